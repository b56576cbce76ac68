package schemas_test

import (
	"bytes"
	"testing"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// TestEncodeGrowsDstOnce holds Encode to its promise of growing dst at most once: into a dst
// with exactly the room it needs it writes in place, and into one a byte short it moves once,
// to a slice of exactly the size needed, instead of letting append grow it twice.
func TestEncodeGrowsDstOnce(t *testing.T) {
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	ev := everything(event.PostFailed)
	want, err := enc.Encode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("key")

	exact := append(make([]byte, 0, len(prefix)+len(want)), prefix...)
	got, err := enc.Encode(exact, ev)
	if err != nil || !bytes.Equal(got, append(prefix, want...)) {
		t.Fatalf("Encode into a dst with room = %x, %v", got, err)
	}
	if &got[0] != &exact[0] {
		t.Error("Encode moved a dst that had exactly the room it needed")
	}

	short := append(make([]byte, 0, len(prefix)+len(want)-1), prefix...)
	got, err = enc.Encode(short, ev)
	if err != nil || !bytes.Equal(got, append(prefix, want...)) {
		t.Fatalf("Encode into a dst a byte short = %x, %v", got, err)
	}
	if &got[0] == &short[0] || cap(got) != len(prefix)+len(want) {
		t.Errorf("Encode into a dst a byte short: cap %d, want a new slice of cap %d", cap(got), len(prefix)+len(want))
	}
}
