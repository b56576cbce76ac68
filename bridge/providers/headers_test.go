package providers_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// headers is a test providers.Headers: a map whose lookup ignores case, as HTTP's does.
type headers map[string][]byte

func (h headers) Peek(key string) []byte {
	if v, ok := h[key]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// with returns a copy of h with name set to value, or removed if value is "-".
func (h headers) with(name, value string) headers {
	c := headers{}
	for k, v := range h {
		if !strings.EqualFold(k, name) {
			c[k] = v
		}
	}
	if value != "-" {
		c[name] = []byte(value)
	}
	return c
}

// readHeaders reads "Name: value" lines from path; a missing file is no headers.
func readHeaders(t testing.TB, path string) headers {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return headers{}
	}
	if err != nil {
		t.Fatal(err)
	}
	h := headers{}
	for line := range strings.Lines(string(b)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			t.Fatalf("%s: not a header line: %q", path, line)
		}
		h[name] = []byte(strings.TrimSpace(value))
	}
	return h
}

// sample reads testdata/<preset>/<name>.json and its headers.
func sample(t testing.TB, preset, name string) ([]byte, headers) {
	t.Helper()
	base := "testdata/" + preset + "/" + name
	body, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return body, readHeaders(t, base+".headers")
}

func mustKey(t testing.TB, p providers.Preset, secret string) *providers.Key {
	t.Helper()
	k, err := p.Key(secret)
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	return k
}

// checkFailure fails t unless err is a *failure.Error of kind with reason; reason "" wants nil.
func checkFailure(t *testing.T, err error, kind failure.Kind, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	var fe *failure.Error
	if !errors.As(err, &fe) {
		t.Fatalf("err = %#v, want a *failure.Error %q", err, reason)
	}
	if fe.Kind != kind || fe.Reason != reason {
		t.Fatalf("err = kind %d %q, want kind %d %q", fe.Kind, fe.Reason, kind, reason)
	}
}
