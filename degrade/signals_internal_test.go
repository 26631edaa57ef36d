package degrade

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// cgroupTree is a fake file system root with a cgroup v2 hierarchy.
type cgroupTree struct {
	t    *testing.T
	root string
}

func newCgroupTree(t *testing.T, self string, mount string) *cgroupTree {
	root := t.TempDir()
	c := &cgroupTree{t: t, root: root}
	c.write("proc/self/cgroup", "12:memory:/legacy\n0::"+self+"\n")
	c.write(filepath.Join(mount, "cgroup.controllers"), "cpu memory\n")
	return c
}

func (c *cgroupTree) write(rel, content string) {
	c.t.Helper()
	p := filepath.Join(c.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cgroupTree) usage(dir string, d time.Duration) {
	c.write(filepath.Join(dir, "cpu.stat"), "usage_usec "+strconv.FormatInt(d.Microseconds(), 10)+"\nuser_usec 1\nsystem_usec 1\n")
}

func noProc() (time.Duration, bool) { return 0, false }

func TestCPUUsageCgroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ct := newCgroupTree(t, "/kubepods/pod1/ctr", "sys/fs/cgroup")
		dir := "sys/fs/cgroup/kubepods/pod1/ctr"
		ct.write("sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n")      // 4 CPUs
		ct.write("sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n") // 2 CPUs: the tightest
		ct.write(dir+"/cpu.max", "max 100000\n")
		ct.usage(dir, 10*time.Second)
		s := newCPUSampler(ct.root, noProc)
		if v := s.sample(); v != 0 {
			t.Fatalf("first sample = %v, want 0", v)
		}
		time.Sleep(time.Second)
		ct.usage(dir, 11500*time.Millisecond) // 1.5 CPU-seconds in 1 s of 2 CPUs
		if v := s.sample(); v != 0.75 {
			t.Fatalf("sample = %v, want 0.75", v)
		}
		// Within the window the last measurement stands.
		ct.usage(dir, 100*time.Second)
		time.Sleep(CPUWindow - time.Nanosecond)
		if v := s.sample(); v != 0.75 {
			t.Fatalf("sample within the window = %v, want the last 0.75", v)
		}
		time.Sleep(time.Nanosecond)
		ct.usage(dir, 11500*time.Millisecond+CPUWindow) // 100% of one CPU over the window... of 2
		if v := s.sample(); v != 0.5 {
			t.Fatalf("sample = %v, want 0.5", v)
		}
	})
}

func TestCPUUsageHybridMountNoQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ct := newCgroupTree(t, "/svc", "sys/fs/cgroup/unified")
		dir := "sys/fs/cgroup/unified/svc"
		ct.usage(dir, 0)
		s := newCPUSampler(ct.root, noProc)
		s.sample()
		time.Sleep(time.Second)
		ct.usage(dir, time.Duration(runtime.NumCPU())*time.Second/2)
		if v := s.sample(); v != 0.5 {
			t.Fatalf("sample = %v, want 0.5 of the host's %d CPUs", v, runtime.NumCPU())
		}
	})
}

func TestCPUUsageFallsBackToProcess(t *testing.T) {
	tests := []struct {
		name  string
		setup func(ct *cgroupTree)
	}{
		{"root cgroup", func(ct *cgroupTree) { ct.write("proc/self/cgroup", "0::/\n") }},
		{"cgroup v1 only", func(ct *cgroupTree) { ct.write("proc/self/cgroup", "3:cpu:/x\n") }},
		{"no proc file", func(ct *cgroupTree) { _ = os.Remove(filepath.Join(ct.root, "proc/self/cgroup")) }},
		{"no cpu.stat", func(ct *cgroupTree) {}},
		{"garbage cpu.stat", func(ct *cgroupTree) { ct.write("sys/fs/cgroup/x/cpu.stat", "usage_usec lots\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ct := newCgroupTree(t, "/x", "sys/fs/cgroup")
				ct.write("sys/fs/cgroup/x/cpu.max", "garbage\n")
				tt.setup(ct)
				var used time.Duration
				s := newCPUSampler(ct.root, func() (time.Duration, bool) { return used, true })
				s.sample()
				time.Sleep(time.Second)
				used = time.Duration(runtime.NumCPU()) * time.Second / 4
				if v := s.sample(); v != 0.25 {
					t.Fatalf("sample = %v, want 0.25 from the process's CPU time over the host's CPUs", v)
				}
			})
		})
	}
}

func TestCPUUsageNoSource(t *testing.T) {
	s := newCPUSampler(t.TempDir(), noProc)
	if v := s.sample(); v != 0 {
		t.Errorf("sample without any source = %v, want 0", v)
	}
}

func TestCPUUsageReal(t *testing.T) {
	sig := CPUUsage()
	sig()
	end := time.Now().Add(CPUWindow + 10*time.Millisecond)
	x := 0
	for time.Now().Before(end) { // bounded: one window of busy work
		x++
	}
	v := sig()
	if !(v > 0) || v > float64(runtime.NumCPU())+1 {
		t.Errorf("CPUUsage() after a busy window = %v, want > 0 and sane (x=%d)", v, x)
	}
	if g := GoroutineCount()(); g < 1 {
		t.Errorf("GoroutineCount() = %v, want >= 1", g)
	}
}
