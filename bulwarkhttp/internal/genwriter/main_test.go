package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreCurrent fails when writer_gen.go or
// writer_gen_test.go differ from what the generator writes: run go
// generate in bulwarkhttp.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	gen, genTest := generate()
	for name, want := range map[string][]byte{"writer_gen.go": gen, "writer_gen_test.go": genTest} {
		got, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate in bulwarkhttp", name)
		}
	}
}
