package bulwarkhttp

//go:generate go run ./internal/genwriter

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
)

// writer is the ResponseWriter the handler gets, reached through one of
// the generated types of writer_gen.go, which add exactly the optional
// interfaces (http.Flusher, http.Hijacker, io.ReaderFrom, http.Pusher,
// http.CloseNotifier) of the writer it wraps; each is a single pointer, so
// handing one out allocates nothing. It lives in the pooled per-request
// state and records what was sent: the status of the first WriteHeader,
// or 200 on the first Write, ReadFrom or Flush that sends it implicitly,
// and whether the connection was hijacked.
type writer struct {
	w        http.ResponseWriter
	s        *serveState
	status   int  // the status sent; 0 before anything was sent
	hijacked bool // the handler took the connection over
}

// sent reports whether the handler sent anything or took the connection.
func (w *writer) sent() bool { return w.status != 0 || w.hijacked }

func (w *writer) Header() http.Header { return w.w.Header() }

// WriteHeader records the first final status (or 101) and passes it on.
// A later one cannot change what was sent: when the request came through
// an http.Server, it is logged here, as net/http would, naming the
// handler's call site rather than this wrapper's, and not passed on.
func (w *writer) WriteHeader(code int) {
	switch {
	case w.hijacked || code < 100 || code > 999:
		// net/http logs the one and panics on the other.
	case w.status != 0:
		if srv, ok := w.s.r.Context().Value(http.ServerContextKey).(*http.Server); ok {
			logSuperfluous(srv)
			return
		}
	case code >= 200 || code == http.StatusSwitchingProtocols:
		w.status = code
	}
	w.w.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	w.implicit()
	return w.w.Write(b)
}

// WriteString is always there: without it, io.WriteString would copy s.
func (w *writer) WriteString(s string) (int, error) {
	w.implicit()
	if sw, ok := w.w.(io.StringWriter); ok {
		return sw.WriteString(s)
	}
	return w.w.Write([]byte(s))
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.w }

// implicit records the 200 that a write sends when no status was.
func (w *writer) implicit() {
	if w.status == 0 && !w.hijacked {
		w.status = http.StatusOK
	}
}

func (w *writer) flush() {
	w.implicit()
	w.w.(http.Flusher).Flush()
}

func (w *writer) flushError() error {
	if f, ok := w.w.(interface{ FlushError() error }); ok {
		w.implicit()
		return f.FlushError()
	}
	w.flush()
	return nil
}

func (w *writer) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.w.(http.Hijacker).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

func (w *writer) readFrom(src io.Reader) (int64, error) {
	w.implicit()
	return w.w.(io.ReaderFrom).ReadFrom(src)
}

func (w *writer) push(target string, opts *http.PushOptions) error {
	return w.w.(http.Pusher).Push(target, opts)
}

// closeNotifier is http.CloseNotifier, deprecated but kept for the
// handlers that still assert it.
type closeNotifier interface{ CloseNotify() <-chan bool }

func (w *writer) closeNotify() <-chan bool {
	return w.w.(closeNotifier).CloseNotify()
}

// logSuperfluous logs a superfluous WriteHeader as net/http does, with the
// first caller outside net/http and this package.
func logSuperfluous(srv *http.Server) {
	var pcs [16]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var f runtime.Frame
	for more := true; more; {
		f, more = frames.Next()
		if !strings.HasPrefix(f.Function, "net/http.") && !strings.HasPrefix(f.Function, thisPackage+".") {
			break
		}
	}
	file := f.File
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		file = file[i+1:]
	}
	const format = "http: superfluous response.WriteHeader call from %s (%s:%d)"
	if srv.ErrorLog != nil {
		srv.ErrorLog.Printf(format, f.Function, file, f.Line)
	} else {
		log.Printf(format, f.Function, file, f.Line)
	}
}

const thisPackage = "github.com/bulwark-go/bulwark/bulwarkhttp"
