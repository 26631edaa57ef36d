package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// maxChargeBytes bounds a charge request's body.
const maxChargeBytes = 1 << 12

// httpHandler is the service's HTTP interface; metrics is the /metrics
// handler and admin the admin page.
func (s *service) httpHandler(metrics, admin http.Handler) http.Handler {
	mux := http.NewServeMux()

	charge := bulwarkhttp.Middleware(s.charges, bulwarkhttp.WithName("charges"))(http.HandlerFunc(s.serveCharge))
	mux.Handle("POST /v1/charges", s.idempotent(charge))

	catalog := bulwarkhttp.Middleware(s.catalogPolicy(),
		bulwarkhttp.WithName("catalog"),
		bulwarkhttp.WithKeyFunc(func(r *http.Request) string {
			return clientKey(r.Header.Get("X-Client-Id"), r.RemoteAddr)
		}),
		bulwarkhttp.WithRateLimitHeaders(true))(http.HandlerFunc(s.serveCatalog))
	mux.Handle("GET /v1/catalog", catalog)

	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.stats())
	})
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/debug/bulwark", admin)
	s.healthRoutes(mux)
	return mux
}

// chargeRequest is the body of POST /v1/charges.
type chargeRequest struct {
	Amount   *int64 `json:"amount"`
	Currency string `json:"currency"`
}

func (s *service) serveCharge(w http.ResponseWriter, r *http.Request) {
	s.executed.Add(1)
	amount, currency, err := parseCharge(http.MaxBytesReader(w, r.Body, maxChargeBytes))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ch, err := s.charge(r.Context(), r.Header.Get("Idempotency-Key"), amount, currency)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away: nothing to write
		}
		s.log.Warn("charge failed", "err", err)
		// A refusal (breakers open, bulkhead full) or a provider's
		// failure: 503 with the hint, or 500 for anything unexpected.
		bulwarkhttp.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ch)
}

// parseCharge reads a charge request: one JSON object with exactly the
// fields amount and currency, valid values (validateCharge).
func parseCharge(body io.Reader) (amount int64, currency string, err error) {
	var req chargeRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, "", fmt.Errorf("malformed charge: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return 0, "", errors.New("malformed charge: more than one JSON value")
	}
	if req.Amount == nil {
		return 0, "", errors.New("invalid charge: amount is missing")
	}
	if err := validateCharge(*req.Amount, req.Currency); err != nil {
		return 0, "", err
	}
	return *req.Amount, req.Currency, nil
}

// catalogBody is the answer of GET /v1/catalog.
type catalogBody struct {
	Items           []item `json:"items"`
	Recommendations []item `json:"recommendations,omitempty"`
}

func (s *service) serveCatalog(w http.ResponseWriter, r *http.Request) {
	items, recs, degraded := s.catalogAnswer()
	if degraded {
		bulwarkhttp.MarkDegraded(w, "recommendations")
	}
	writeJSON(w, http.StatusOK, catalogBody{Items: items, Recommendations: recs})
}

// writeJSON answers v as JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeProblem answers an RFC 9457 problem.
func writeProblem(w http.ResponseWriter, code int, detail string) {
	b, _ := json.Marshal(map[string]any{
		"type":   "about:blank",
		"title":  http.StatusText(code),
		"status": code,
		"detail": detail,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
