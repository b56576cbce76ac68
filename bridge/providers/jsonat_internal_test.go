package providers

import (
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestJSONAtIndexes checks the array steps of an hmac.*_path: an index picks that element,
// and one past the end, a negative one or one that is not a number finds nothing.
func TestJSONAtIndexes(t *testing.T) {
	doc := jsontext.Value(`{"items":[{"id":"first"},{"id":"second"}],"n":{"1":{"id":"member"}}}`)
	for _, tc := range []struct {
		path string
		want string // "" when nothing is found
	}{
		{"items.0.id", `"first"`},
		{"items.1.id", `"second"`},
		{"items.2.id", ""},
		{"items.-1.id", ""},
		{"items.one.id", ""},
		{"n.1.id", `"member"`}, // a member named "1", not an index
		{"items.0.id.x", ""},
	} {
		got, ok := jsonAt(doc, strings.Split(tc.path, "."))
		if ok != (tc.want != "") || string(got) != tc.want {
			t.Errorf("jsonAt(%s) = %s, %t; want %s", tc.path, got, ok, tc.want)
		}
	}
}
