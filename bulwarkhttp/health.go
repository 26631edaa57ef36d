package bulwarkhttp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/health"
)

// healthJSON is the media type of draft-inadarei-api-health-check.
const healthJSON = "application/health+json"

// Health returns a handler answering c's probes, after Kubernetes:
//
//	/livez, /readyz, /startupz     the probe of that kind
//	/livez/<name>, /readyz/<name>  one check of that kind
//
// The paths are matched by their last segments, so the handler works
// wherever it is mounted, with or without http.StripPrefix:
//
//	mux.Handle("/livez", h); mux.Handle("/readyz", h); mux.Handle("/readyz/", h)
//	mux.Handle("/health/", h) // /health/readyz, /health/readyz/db, …
//
// A passing probe (warnings included) answers 200 "ok"; a failing one 503
// with the failed checks, one "[-]name failed: reason" line each. ?verbose
// lists every check — "[+]name ok", "[!]name warn: reason", "[-]name
// failed: reason", "[+]name excluded: ok" — and a last line "readyz check
// passed" (or failed). ?exclude=name, repeatable, leaves a check out; the
// "drain" entry that fails readiness during a drain cannot be left out. A
// request that accepts application/health+json gets
// draft-inadarei-api-health-check JSON instead: status pass|warn|fail,
// checks keyed "name:status" with componentType, status, time, output
// (for warn and fail) and observedValue / observedUnit when the check
// reported one ([health.Observe]); 200 for pass and warn, 503 for fail.
//
// Every answer carries Cache-Control: no-store. GET and HEAD are served;
// other methods get 405. Unknown paths and checks get 404. The reasons are
// the checks' error strings: mount the handler where only the platform
// and operators can reach it if they may reveal too much.
func Health(c *health.Checker) http.Handler {
	if c == nil {
		panic("bulwarkhttp: Health(nil)")
	}
	return &healthHandler{c: c}
}

type healthHandler struct{ c *health.Checker }

// probeNames maps the path segments to the kinds of probe.
var probeNames = map[string]health.Kind{"livez": health.Liveness, "readyz": health.Readiness, "startupz": health.Startup}

func probeName(k health.Kind) string {
	switch k {
	case health.Liveness:
		return "livez"
	case health.Startup:
		return "startupz"
	}
	return "readyz"
}

// parseHealthPath finds the probe in the last segments of path: ".../<probe>"
// or ".../<probe>/<check>". A trailing slash is ignored.
func parseHealthPath(path string) (k health.Kind, check string, ok bool) {
	path = strings.TrimSuffix(path, "/")
	i := strings.LastIndexByte(path, '/')
	last := path[i+1:]
	if i >= 0 {
		prev := path[:i]
		prev = prev[strings.LastIndexByte(prev, '/')+1:]
		if k, ok := probeNames[prev]; ok && last != "" {
			return k, last, true
		}
	}
	k, ok = probeNames[last]
	return k, "", ok
}

// acceptsHealthJSON reports whether an Accept header lists
// application/health+json with a non-zero quality.
func acceptsHealthJSON(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(mt), healthJSON) {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(name, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}

func (h *healthHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	kind, name, ok := parseHealthPath(r.URL.Path)
	if !ok {
		writeHealthText(w, r, http.StatusNotFound, "404 page not found\n")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		writeHealthText(w, r, http.StatusMethodNotAllowed, "405 method not allowed\n")
		return
	}
	hdr.Add("Vary", "Accept")
	asJSON := acceptsHealthJSON(r.Header.Values("Accept"))
	q := r.URL.Query()
	var rep health.Report
	if name != "" {
		res, found := h.c.CheckOne(r.Context(), kind, name)
		if !found {
			writeHealthText(w, r, http.StatusNotFound, probeName(kind)+": no check "+strconv.Quote(name)+"\n")
			return
		}
		rep = health.Report{Kind: kind, Status: res.Status, Checks: []health.Result{res}}
	} else {
		rep = h.c.Check(r.Context(), kind, q["exclude"]...)
	}
	code := http.StatusOK
	if rep.Status == health.StatusFail {
		code = http.StatusServiceUnavailable
	}
	if asJSON {
		writeHealthJSON(w, r, code, rep)
		return
	}
	_, verbose := q["verbose"]
	var b strings.Builder
	switch {
	case name != "" && !verbose:
		if rep.Status == health.StatusPass {
			b.WriteString("ok\n")
		} else {
			writeLine(&b, rep.Checks[0])
		}
	case name != "":
		writeLine(&b, rep.Checks[0])
	case verbose:
		for _, res := range rep.Checks {
			writeLine(&b, res)
		}
		for _, n := range rep.Excluded {
			b.WriteString("[+]" + n + " excluded: ok\n")
		}
		if len(rep.Unmatched) > 0 {
			b.WriteString("warn: some health checks cannot be excluded: no matches for ")
			for i, n := range rep.Unmatched {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strconv.Quote(n))
			}
			b.WriteByte('\n')
		}
		verdict := "passed"
		if code != http.StatusOK {
			verdict = "failed"
		}
		b.WriteString(probeName(kind) + " check " + verdict + "\n")
	case code == http.StatusOK:
		b.WriteString("ok\n")
	default:
		for _, res := range rep.Checks {
			if res.Status == health.StatusFail {
				writeLine(&b, res)
			}
		}
		b.WriteString(probeName(kind) + " check failed\n")
	}
	writeHealthText(w, r, code, b.String())
}

// writeLine writes one verbose line for res.
func writeLine(b *strings.Builder, res health.Result) {
	switch res.Status {
	case health.StatusPass:
		b.WriteString("[+]" + res.Name + " ok\n")
	case health.StatusWarn:
		b.WriteString("[!]" + res.Name + " warn: " + reason(res.Err) + "\n")
	default:
		b.WriteString("[-]" + res.Name + " failed: " + reason(res.Err) + "\n")
	}
}

// reason is err's text on one line.
func reason(err error) string {
	if err == nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

func writeHealthText(w http.ResponseWriter, r *http.Request, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

// healthCheckJSON is one entry of a health+json "checks" member.
type healthCheckJSON struct {
	ComponentType string `json:"componentType,omitempty"`
	ObservedValue any    `json:"observedValue,omitempty"`
	ObservedUnit  string `json:"observedUnit,omitempty"`
	Status        string `json:"status"`
	Time          string `json:"time,omitempty"`
	Output        string `json:"output,omitempty"`
}

type healthReportJSON struct {
	Status string                       `json:"status"`
	Output string                       `json:"output,omitempty"`
	Checks map[string][]healthCheckJSON `json:"checks,omitempty"`
}

func writeHealthJSON(w http.ResponseWriter, r *http.Request, code int, rep health.Report) {
	out := healthReportJSON{Status: rep.Status.String(), Checks: map[string][]healthCheckJSON{}}
	var failed []string
	for _, res := range rep.Checks {
		e := healthCheckJSON{
			ComponentType: res.ComponentType,
			ObservedValue: res.ObservedValue,
			ObservedUnit:  res.ObservedUnit,
			Status:        res.Status.String(),
		}
		if !res.Time.IsZero() {
			e.Time = res.Time.UTC().Format(time.RFC3339Nano)
		}
		if res.Status != health.StatusPass {
			e.Output = reason(res.Err)
			failed = append(failed, res.Name)
		}
		out.Checks[res.Name+":status"] = append(out.Checks[res.Name+":status"], e)
	}
	if rep.Status != health.StatusPass {
		out.Output = probeName(rep.Kind) + ": " + rep.Status.String() + ": " + strings.Join(failed, ", ")
	}
	body, err := json.Marshal(out)
	if err != nil { // an ObservedValue JSON cannot encode
		for k, es := range out.Checks {
			for i := range es {
				es[i].ObservedValue = nil
			}
			out.Checks[k] = es
		}
		body, _ = json.Marshal(out)
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", healthJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
