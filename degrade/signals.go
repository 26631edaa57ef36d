package degrade

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CPUWindow is the shortest window over which [CPUUsage] measures: calls
// closer together than this return the last measurement.
const CPUWindow = 250 * time.Millisecond

// CPUUsage returns a signal for [WhenAbove] and [LevelsAbove]: the
// fraction of its CPU quota the process uses, 0 … 1 (above 1 briefly when
// the quota is enforced late), measured between successive calls at least
// [CPUWindow] apart; calls closer together return the last measurement. The
// first call returns 0. It starts no goroutine and costs two small file
// reads per measurement.
//
// In a cgroup v2 container (a cgroup other than the root one) the usage is
// the cgroup's usage_usec from cpu.stat and the quota the tightest cpu.max
// of the cgroup and its ancestors; without a quota, or outside cgroup v2,
// the quota is the host's CPUs (runtime.NumCPU) and, outside a cgroup, the
// usage is the process's own CPU time.
//
// Each call of CPUUsage returns an independent signal; share one between
// triggers rather than making one per trigger.
func CPUUsage() func() float64 {
	s := newCPUSampler("/", processCPUTime)
	return s.sample
}

// GoroutineCount returns a signal for [WhenAbove] and [LevelsAbove]: the
// number of goroutines that exist now (runtime.NumGoroutine).
func GoroutineCount() func() float64 {
	return func() float64 { return float64(runtime.NumGoroutine()) }
}

// cpuSampler measures CPU usage against the quota, lazily.
type cpuSampler struct {
	root    string                       // file system root: "/" but in tests
	proc    func() (time.Duration, bool) // the process's CPU time
	value   atomic.Uint64                // math.Float64bits of the last measurement
	mu      sync.Mutex
	have    bool          // guarded by mu
	last    time.Time     // guarded by mu
	lastUse time.Duration // guarded by mu
}

func newCPUSampler(root string, proc func() (time.Duration, bool)) *cpuSampler {
	return &cpuSampler{root: root, proc: proc}
}

func (s *cpuSampler) sample() float64 {
	if !s.mu.TryLock() {
		return math.Float64frombits(s.value.Load())
	}
	defer s.mu.Unlock()
	now := time.Now()
	if s.have && now.Sub(s.last) < CPUWindow {
		return math.Float64frombits(s.value.Load())
	}
	dir, inCgroup := s.cgroupDir()
	use, ok := time.Duration(0), false
	if inCgroup {
		use, ok = cgroupUsage(dir)
	}
	if !ok {
		use, ok = s.proc()
	}
	if !ok {
		return math.Float64frombits(s.value.Load())
	}
	if !s.have || use < s.lastUse {
		s.have, s.last, s.lastUse = true, now, use
		return math.Float64frombits(s.value.Load())
	}
	cores := s.cores(dir, inCgroup)
	v := float64(use-s.lastUse) / float64(now.Sub(s.last)) / cores
	s.last, s.lastUse = now, use
	s.value.Store(math.Float64bits(v))
	return v
}

// cgroupDir returns the directory of this process's cgroup v2, and false
// when there is none or it is the root cgroup.
func (s *cpuSampler) cgroupDir() (string, bool) {
	data, err := os.ReadFile(filepath.Join(s.root, "proc/self/cgroup"))
	if err != nil {
		return "", false
	}
	var path string
	found := false
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			path, found = rest, true
			break
		}
	}
	if !found || path == "/" || path == "" {
		return "", false
	}
	for _, mount := range []string{"sys/fs/cgroup", "sys/fs/cgroup/unified"} {
		m := filepath.Join(s.root, mount)
		if _, err := os.Stat(filepath.Join(m, "cgroup.controllers")); err == nil {
			return filepath.Join(m, filepath.Clean("/"+path)), true
		}
	}
	return "", false
}

// cgroupUsage reads usage_usec from dir's cpu.stat.
func cgroupUsage(dir string) (time.Duration, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "usage_usec" {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || us < 0 {
				return 0, false
			}
			return time.Duration(us) * time.Microsecond, true
		}
	}
	return 0, false
}

// cores is the quota in CPUs: the tightest cpu.max from dir up to the
// cgroup mount, else the host's CPUs.
func (s *cpuSampler) cores(dir string, inCgroup bool) float64 {
	best := math.Inf(1)
	if inCgroup {
		stop := filepath.Join(s.root, "sys/fs/cgroup")
		for d := dir; strings.HasPrefix(d, stop); d = filepath.Dir(d) {
			if q, ok := cpuMax(d); ok && q < best {
				best = q
			}
			if d == stop || d == filepath.Dir(d) {
				break
			}
		}
	}
	if math.IsInf(best, 1) {
		return float64(runtime.NumCPU())
	}
	return best
}

// cpuMax reads "quota period" (or "max period") from dir's cpu.max.
func cpuMax(dir string) (float64, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	q, err1 := strconv.ParseFloat(f[0], 64)
	p, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || !(q > 0) || !(p > 0) || math.IsInf(q, 0) || math.IsInf(p, 0) {
		return 0, false
	}
	return q / p, true
}
