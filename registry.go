package bulwark

import (
	"fmt"
	"iter"
	"reflect"
	"slices"
	"sync"
)

// Registry holds the values an operator may see and steer: policies, retry
// budgets, switches — anything with a name. The admin page
// (bulwarkhttp.Admin) shows every registered value that implements
// [Snapshotter] and offers the actions of those that implement
// [Controller]; config loaders (degrade.Load) look values up by name.
//
// There is no global registry: a service makes one with [NewRegistry] and
// registers what it wants shown. A Registry is safe for concurrent use. The
// zero value is not usable; use NewRegistry.
type Registry struct {
	mu    sync.RWMutex
	byKey map[string]any
	order []string
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{byKey: map[string]any{}}
}

// Named is a value that knows its own name, as every bulwark policy does.
type Named interface{ Name() string }

// Register adds values under their own names ([Named]). It panics, as
// http.ServeMux.Handle does, on a nil value, an empty name or a name already
// registered: those are programming errors found at start-up.
func (r *Registry) Register(vs ...Named) {
	for _, v := range vs {
		if isNil(v) {
			panic("bulwark: Registry.Register of a nil value")
		}
		r.RegisterAs(v.Name(), v)
	}
}

// RegisterAs adds v under name, for values without a Name method or to
// register one value under another name. It panics on a nil value (typed
// nil pointers included), an empty name or a name already registered.
func (r *Registry) RegisterAs(name string, v any) {
	if isNil(v) {
		panic("bulwark: Registry.RegisterAs of a nil value")
	}
	if name == "" {
		panic("bulwark: Registry.RegisterAs with an empty name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byKey[name]; dup {
		panic(fmt.Sprintf("bulwark: Registry: %q registered twice", name))
	}
	r.byKey[name] = v
	r.order = append(r.order, name)
}

// isNil reports whether v is nil or a typed nil (a nil pointer, map,
// func, channel or slice in an interface), which no registered value may
// be: its methods would fail on every refresh of the admin page.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// Unregister removes name; it does nothing when name is not registered.
func (r *Registry) Unregister(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[name]; !ok {
		return
	}
	delete(r.byKey, name)
	r.order = slices.DeleteFunc(r.order, func(n string) bool { return n == name })
}

// Lookup returns the value registered under name.
func (r *Registry) Lookup(name string) (any, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.byKey[name]
	return v, ok
}

// All yields the registered names and values in registration order. It
// iterates over a copy taken when it starts, so the loop body may register
// and unregister.
func (r *Registry) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		r.mu.RLock()
		names := slices.Clone(r.order)
		vals := make([]any, len(names))
		for i, n := range names {
			vals[i] = r.byKey[n]
		}
		r.mu.RUnlock()
		for i, n := range names {
			if !yield(n, vals[i]) {
				return
			}
		}
	}
}

// Snapshots returns the snapshot of every registered [Snapshotter], in
// registration order. Each snapshot's Name is the name the value is
// registered under — the name [Registry.Lookup] finds it by, and which the
// admin page's actions use — whatever its Snapshot method said: a value
// registered under two names (RegisterAs) appears twice, once under each.
func (r *Registry) Snapshots() []Snapshot {
	var out []Snapshot
	for name, v := range r.All() {
		s, ok := v.(Snapshotter)
		if !ok {
			continue
		}
		snap := s.Snapshot()
		snap.Name = name
		out = append(out, snap)
	}
	return out
}
