package bulwarkhttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// A service registers what an operator may see and steer, and mounts the
// admin page on an internal listener. Any type with a Snapshot method shows
// up; one with Actions and Control can be steered.
func ExampleAdmin() {
	reg := bulwark.NewRegistry()
	reg.Register(&lamp{name: "porch"}) // breakers, limiters, switches… register the same way

	mux := http.NewServeMux()
	mux.Handle("/debug/bulwark", bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("s3cret")))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// An operator turns the lamp on, with a reason for the incident log.
	req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/debug/bulwark",
		strings.NewReader(`{"policy":"porch","action":"on","reason":"incident 42"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("POST:", resp.StatusCode)

	// The JSON view shows the new state and who changed it.
	req, _ = http.NewRequest("GET", srv.URL+"/debug/bulwark", nil)
	req.Header.Set("Accept", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(strings.Contains(string(body), `"state":"on"`), strings.Contains(string(body), `"source":"manual","reason":"incident 42"`))
	// Output:
	// POST: 200
	// true true
}
