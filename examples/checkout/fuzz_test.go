package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzCheckoutParseCharge: whatever the body, parseCharge either refuses
// it or returns a valid charge that the body really says.
func FuzzCheckoutParseCharge(f *testing.F) {
	for _, seed := range []string{
		`{"amount": 1299, "currency": "EUR"}`, `{"amount": -1, "currency": "EUR"}`,
		`{"amount": 1, "currency": "EURO"}`, `{"currency": "EUR"}`, `{}`, `[]`, `null`,
		`{"amount": 1e3, "currency": "EUR"}`, `{"amount": 9223372036854775808, "currency": "EUR"}`,
		`{"amount": 1, "currency": "EUR"} {}`, `{"amount": 1, "currency": "EUR", "x": 1}`,
		`{"amount": 1, "amount": 2, "currency": "eur"}`, `{"AMOUNT": 5, "Currency": "USD"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		amount, currency, err := parseCharge(strings.NewReader(body))
		if err != nil {
			if amount != 0 || currency != "" {
				t.Fatalf("parseCharge(%q) = %d, %q with error %v", body, amount, currency, err)
			}
			return
		}
		if verr := validateCharge(amount, currency); verr != nil {
			t.Fatalf("parseCharge(%q) accepted an invalid charge: %v", body, verr)
		}
		// The body decodes, without the strict rules, to the same values.
		var loose struct {
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		}
		if err := json.Unmarshal([]byte(body), &loose); err != nil || loose.Amount != amount || loose.Currency != currency {
			t.Fatalf("parseCharge(%q) = %d, %q; json.Unmarshal says %d, %q (%v)", body, amount, currency, loose.Amount, loose.Currency, err)
		}
	})
}
