package providers

import (
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestGoKind pins what an error message says a field wants, for every kind of Go type a
// preset decodes into: numbers are the kinds from int to float64 and no other.
func TestGoKind(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{jsontext.Value(nil), "any value"},
		{"", "a string"},
		{false, "a boolean"},
		{int(0), "a number"},
		{uint8(0), "a number"},
		{float64(0), "a number"},
		{uintptr(0), "a number"},
		{complex64(0), "another value"},
		{struct{}{}, "an object"},
		{map[string]int{}, "an object"},
		{[]int{}, "an array"},
		{[2]int{}, "an array"},
		{new(string), "a string"},
		{make(chan int), "another value"},
	} {
		if got := goKind(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("goKind(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := goKind(nil); got != "another value" {
		t.Errorf("goKind(nil) = %q", got)
	}
}
