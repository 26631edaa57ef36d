package bulwarkhttp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
)

//go:embed admin/page.html admin/page.css admin/page.js
var adminFiles embed.FS

var adminPage = template.Must(template.New("page.html").ParseFS(adminFiles, "admin/page.html"))

// adminCSS and adminJS are inlined into the page (with a nonce for the
// script), so the page is one request and works on an air-gapped network.
var (
	adminCSS = mustRead("admin/page.css")
	adminJS  = mustRead("admin/page.js")
)

func mustRead(name string) string {
	b, err := adminFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// AdminOption configures [Admin].
type AdminOption interface{ applyAdmin(*adminOptions) }

type adminOptions struct {
	token     string
	readToken string
	logger    *slog.Logger
	title     string
	now       func() time.Time
}

type adminOptionFunc func(*adminOptions)

func (f adminOptionFunc) applyAdmin(o *adminOptions) { f(o) }

// WithAdminToken sets the bearer token that mutations (POST) must carry in
// an Authorization: Bearer header. Without a token every mutation is
// refused with 403 and the page says that mutations are disabled.
// Surrounding blanks are trimmed (a header cannot carry them; a token read
// from a file keeps its newline), so a blank token is no token.
// Default: none (read-only).
func WithAdminToken(token string) AdminOption {
	return adminOptionFunc(func(o *adminOptions) { o.token = token })
}

// WithAdminReadToken makes reading the page and its JSON need a bearer token
// too (Authorization: Bearer <token>, or the mutation token). The HTML page
// itself cannot send a header on its first load, so with a read token the
// page is served only to requests that carry it (a proxy that adds it, or
// curl); most services instead mount the page on an internal listener.
// Default: none (GET needs no token).
func WithAdminReadToken(token string) AdminOption {
	return adminOptionFunc(func(o *adminOptions) { o.readToken = token })
}

// WithAdminLogger sets the logger accepted mutations are logged to.
// Default: slog.Default(). A nil logger is ignored.
func WithAdminLogger(l *slog.Logger) AdminOption {
	return adminOptionFunc(func(o *adminOptions) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithAdminTitle sets the page's title. Default: "bulwark".
func WithAdminTitle(title string) AdminOption {
	return adminOptionFunc(func(o *adminOptions) { o.title = title })
}

// Admin returns the admin page of the policies in reg: what every breaker,
// compartment, limiter, budget, switch, shedder, drill and failover set is
// doing now, and forms for the actions they accept. Mount it on an internal
// listener, for example:
//
//	mux.Handle("/debug/bulwark", bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken(token)))
//
// A registered value appears when it implements [bulwark.Snapshotter]; its
// actions are offered when it implements [bulwark.Controller]. Admin knows
// no policy package: a type of the user's shows up the same way.
//
// Requests, relative to wherever the handler is mounted (the path is not
// routed on):
//
//   - GET or HEAD with an Accept header that ranks application/json above
//     text/html (or ?format=json): the state as JSON, {"time",
//     "mutations", "policies": [bulwark.Snapshot…]}, each snapshot named
//     by the name it is registered under (the name a POST uses) and with
//     its actions. Field names are those of [bulwark.Snapshot] and are
//     stable. A value whose Snapshot or Actions panics is shown as a row
//     with health "fail" and the panic as its reason, and logged; the rest
//     of the page is unaffected. Snapshot is called on the request's
//     goroutine: one that blocks holds the page.
//   - GET or HEAD otherwise: an HTML page that polls the JSON every 1.5 s
//     and renders one form per action. Plain HTML, CSS and a little
//     JavaScript, no external resource.
//   - POST with Authorization: Bearer <token> and a JSON body
//     {"policy": name, "action": action, "args": {param: value}, "reason":
//     text} (one object, nothing after it): runs the action through [bulwark.Controller.Control] and answers
//     the policy's new snapshot. Every POST is checked for the token before
//     anything else: 403 when no token is configured, 401 with
//     WWW-Authenticate: Bearer when it is missing or wrong (compared in
//     constant time). Then: 415 unless the body is application/json (so a
//     cross-site form cannot post; the token travels in a header, never a
//     cookie), 400 for a malformed body, a missing reason or a bad argument
//     ([bulwark.ErrInvalidControl]), 404 for an unknown policy, 409 for one
//     that accepts no controls. Every accepted mutation is logged (policy,
//     action, args, reason, remote address).
//   - any other method: 405 with Allow.
//
// Every answer carries Cache-Control: no-store; errors are RFC 9457
// problem+json.
func Admin(reg *bulwark.Registry, opts ...AdminOption) http.Handler {
	if reg == nil {
		panic("bulwarkhttp: Admin with a nil Registry")
	}
	o := adminOptions{logger: slog.Default(), title: "bulwark", now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt.applyAdmin(&o)
		}
	}
	// A header cannot carry surrounding blanks: a token read from a file
	// with its newline would otherwise never match.
	o.token, o.readToken = strings.TrimSpace(o.token), strings.TrimSpace(o.readToken)
	return &adminHandler{reg: reg, o: o}
}

type adminHandler struct {
	reg *bulwark.Registry
	o   adminOptions
}

// adminState is the JSON document of GET.
type adminState struct {
	Time      time.Time          `json:"time"`
	Mutations bool               `json:"mutations"`
	Policies  []bulwark.Snapshot `json:"policies"`
}

// adminRequest is the JSON body of a POST.
type adminRequest struct {
	Policy string            `json:"policy"`
	Action string            `json:"action"`
	Args   map[string]string `json:"args"`
	Reason string            `json:"reason"`
}

// maxAdminBody bounds a POST body.
const maxAdminBody = 64 << 10

func (h *adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch r.Method {
	case http.MethodPost:
		h.post(w, r)
	case http.MethodGet, http.MethodHead:
		w.Header().Add("Vary", "Accept")
		if h.o.readToken != "" && !h.bearerIs(r, h.o.readToken) && !(h.o.token != "" && h.bearerIs(r, h.o.token)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bulwark admin"`)
			writeProblem(w, r, http.StatusUnauthorized, "this page needs a bearer token")
			return
		}
		if wantsJSON(r) {
			h.getJSON(w, r)
			return
		}
		h.getPage(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeProblem(w, r, http.StatusMethodNotAllowed, "use GET to read and POST to act")
	}
}

// bearerIs reports whether r carries Authorization: Bearer want, compared
// in constant time (over hashes, so the length of want does not leak
// either).
func (h *adminHandler) bearerIs(r *http.Request, want string) bool {
	got, ok := bearer(r)
	if !ok {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// bearer returns the token of r's Authorization: Bearer header (RFC 6750:
// the scheme is case-insensitive).
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Values("Authorization")
	if len(v) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// wantsJSON reports whether r asks for the JSON state: ?format=json, or
// an Accept header that ranks JSON (application/json, *+json,
// application/*) above HTML (text/html, application/xhtml+xml, text/*,
// */*), by their q-values; a tie goes to JSON, q=0 excludes.
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	jsonQ, htmlQ := -1.0, -1.0
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
				continue
			}
			q = f
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			jsonQ = max(jsonQ, q)
		case mt == "text/html" || mt == "application/xhtml+xml" || mt == "text/*" || mt == "*/*":
			htmlQ = max(htmlQ, q)
		case mt == "application/*":
			jsonQ = max(jsonQ, q)
		}
	}
	return jsonQ > 0 && jsonQ >= htmlQ
}

// state is the page's state: every registered Snapshotter under its
// registered name (the name a POST names it by), with its own actions.
func (h *adminHandler) state() adminState {
	snaps := []bulwark.Snapshot{}
	for name, v := range h.reg.All() {
		if s, ok := v.(bulwark.Snapshotter); ok {
			snaps = append(snaps, h.snapshot(name, v, s))
		}
	}
	return adminState{Time: h.o.now().UTC(), Mutations: h.o.token != "", Policies: snaps}
}

// snapshot is v's snapshot named name, with v's actions when it is a
// Controller. A Snapshot or Actions method that panics gives a failed row
// saying so (and a log line) instead of taking the whole page down: one
// broken value must not hide every other in an incident.
func (h *adminHandler) snapshot(name string, v any, s bulwark.Snapshotter) (snap bulwark.Snapshot) {
	defer func() {
		if r := recover(); r != nil {
			h.o.logger.Error("bulwark admin: a registered value panicked", slog.String("policy", name), slog.Any("panic", r))
			snap = bulwark.Snapshot{Name: name, State: "error", Health: "fail", Reason: fmt.Sprintf("Snapshot or Actions panicked: %v", r)}
		}
	}()
	snap = s.Snapshot()
	snap.Name = name
	if c, ok := v.(bulwark.Controller); ok && snap.Actions == nil {
		snap.Actions = c.Actions()
	}
	return snap
}

func (h *adminHandler) getJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, h.state())
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "the state could not be encoded")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// pageData is what the page template renders on first load; the script
// then keeps it current from the JSON.
type pageData struct {
	Title     string
	Nonce     string
	CSS       template.CSS
	JS        template.JS
	Mutations bool
	Initial   template.JS // the first state, so the page shows it at once
}

func (h *adminHandler) getPage(w http.ResponseWriter, r *http.Request) {
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	nonce := base64.RawStdEncoding.EncodeToString(nb[:])
	initial, err := json.Marshal(h.state())
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "the state could not be encoded")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; connect-src 'self'; style-src 'nonce-"+nonce+"'; script-src 'nonce-"+nonce+"'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	_ = adminPage.Execute(w, pageData{
		Title:     h.o.title,
		Nonce:     nonce,
		CSS:       template.CSS(adminCSS),
		JS:        template.JS(adminJS),
		Mutations: h.o.token != "",
		Initial:   template.JS(initial),
	})
}

func (h *adminHandler) post(w http.ResponseWriter, r *http.Request) {
	// The token first: no routing answer (400, 404, 405, 415) before it.
	if h.o.token == "" {
		writeProblem(w, r, http.StatusForbidden, "mutations are disabled: no admin token is configured")
		return
	}
	if !h.bearerIs(r, h.o.token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bulwark admin"`)
		writeProblem(w, r, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeProblem(w, r, http.StatusUnsupportedMediaType, "the body must be application/json")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "the body could not be read")
		return
	}
	if len(body) > maxAdminBody {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "the body is too large")
		return
	}
	var req adminRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		// A second document (or junk) after the first: one request,
		// one action.
		writeProblem(w, r, http.StatusBadRequest, "malformed JSON body: data after the object")
		return
	}
	if req.Policy == "" || req.Action == "" {
		writeProblem(w, r, http.StatusBadRequest, `the body needs "policy" and "action"`)
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		writeProblem(w, r, http.StatusBadRequest, `the body needs a "reason": say why, for the incident log`)
		return
	}
	v, ok := h.reg.Lookup(req.Policy)
	if !ok {
		writeProblem(w, r, http.StatusNotFound, "no policy named "+strconvQuote(req.Policy))
		return
	}
	c, ok := v.(bulwark.Controller)
	if !ok {
		writeProblem(w, r, http.StatusConflict, strconvQuote(req.Policy)+" accepts no controls")
		return
	}
	if err := c.Control(r.Context(), req.Action, req.Args, req.Reason); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, bulwark.ErrInvalidControl) {
			status = http.StatusBadRequest
		}
		writeProblem(w, r, status, err.Error())
		return
	}
	h.o.logger.LogAttrs(r.Context(), slog.LevelWarn, "bulwark admin: action applied",
		slog.String("policy", req.Policy),
		slog.String("action", req.Action),
		slog.Any("args", req.Args),
		slog.String("reason", req.Reason),
		slog.String("remote", r.RemoteAddr))
	var snap any = struct{}{}
	if s, ok := v.(bulwark.Snapshotter); ok {
		snap = h.snapshot(req.Policy, v, s)
	}
	writeJSON(w, r, http.StatusOK, snap)
}

// writeProblem writes an RFC 9457 problem+json answer with status and
// detail.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	body, _ := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func strconvQuote(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
