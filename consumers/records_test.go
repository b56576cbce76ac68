package consumers_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
)

func header(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// TestForwardReplacesOnlyTheHeadersSet: a forwarded record keeps the key, the value and
// every header not named in set, and carries set's headers in place of those named.
func TestForwardReplacesOnlyTheHeadersSet(t *testing.T) {
	r := &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte("v"), Offset: 7,
		Headers: []kgo.RecordHeader{header("a", "1"), header("b", "2"), header("a", "3")}}
	f := consumers.Forward(r, "out", header("a", "9"), header("c", "4"))
	if f.Topic != "out" || string(f.Key) != "k" || string(f.Value) != "v" {
		t.Fatalf("forwarded %+v", f)
	}
	var got []string
	for _, h := range f.Headers {
		got = append(got, h.Key+"="+string(h.Value))
	}
	if want := []string{"b=2", "a=9", "c=4"}; !slices.Equal(got, want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	if len(r.Headers) != 3 || string(r.Headers[2].Value) != "3" {
		t.Errorf("the original's headers changed: %v", r.Headers)
	}
}

// TestHeaderIsTheLastOfItsName: Header finds a header wherever it is, the last of its name
// when there are several, and says when there is none.
func TestHeaderIsTheLastOfItsName(t *testing.T) {
	for _, c := range []struct {
		headers []kgo.RecordHeader
		want    string
		ok      bool
	}{
		{[]kgo.RecordHeader{header("x", "1")}, "1", true},
		{[]kgo.RecordHeader{header("x", "1"), header("y", "2")}, "1", true},
		{[]kgo.RecordHeader{header("x", "1"), header("y", "2"), header("x", "3")}, "3", true},
		{[]kgo.RecordHeader{header("y", "2")}, "", false},
		{nil, "", false},
	} {
		got, ok := consumers.Header(&kgo.Record{Headers: c.headers}, "x")
		if got != c.want || ok != c.ok {
			t.Errorf("%v: %q, %v; want %q, %v", c.headers, got, ok, c.want, c.ok)
		}
	}
}
