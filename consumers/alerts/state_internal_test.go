package alerts

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
)

func ev(typ, id string, at time.Time) *notice {
	return &notice{ID: id, Type: typ, Key: Key{Source: "acme", Profile: "brand", Platform: "x"}, ReceivedAt: at}
}

func TestDecisions(t *testing.T) {
	t0 := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	const cool = time.Hour
	first, alerted := expire(nil, ev(event.PostTokenExpired, "e1", t0), cool)
	if !alerted || first.Until != t0.Add(cool) {
		t.Fatalf("first expiry: alerted %v, %+v", alerted, first)
	}
	cases := []struct {
		name string
		cur  *Alert
		ev   *notice
		want bool
	}{
		{"same event again", first, ev(event.PostTokenExpired, "e1", t0), false},
		{"inside the cool-down", first, ev(event.PostTokenExpired, "e2", t0.Add(59*time.Minute)), false},
		{"after the cool-down", first, ev(event.PostTokenExpired, "e3", t0.Add(cool)), true},
		{"publish after the expiry resolves", first, ev(event.PostPublished, "p1", t0.Add(time.Minute)), true},
		{"publish before the expiry does not", first, ev(event.PostPublished, "p0", t0.Add(-time.Minute)), false},
		{"publish without an alert does nothing", nil, ev(event.PostPublished, "p2", t0), false},
	}
	for _, c := range cases {
		var got bool
		if c.ev.Type == event.PostPublished {
			_, got = publish(c.cur, c.ev)
		} else {
			_, got = expire(c.cur, c.ev, cool)
		}
		if got != c.want {
			t.Errorf("%s: changed %v, want %v", c.name, got, c.want)
		}
	}
	resolved, _ := publish(first, ev(event.PostPublished, "p1", t0.Add(time.Minute)))
	if _, again := publish(resolved, ev(event.PostPublished, "p3", t0.Add(2*time.Minute))); again {
		t.Error("a second publish resolved again")
	}
	if _, a := expire(resolved, ev(event.PostTokenExpired, "e4", t0.Add(2*time.Minute)), cool); !a {
		t.Error("an expiry after the resolution, inside the old cool-down, did not alert: resolving ends it")
	}
	if _, a := expire(resolved, ev(event.PostTokenExpired, "e5", t0.Add(30*time.Second)), cool); a {
		t.Error("an expiry older than the resolution alerted")
	}
}

func TestOwed(t *testing.T) {
	a := &Alert{ID: "e1"}
	r := &Alert{ID: "e1", Resolution: &Resolution{ID: "p1"}}
	cases := []struct {
		a        *Alert
		d        Delivery
		kind, id string
	}{
		{nil, Delivery{}, "", ""},
		{a, Delivery{}, msgAlert, "e1"},
		{a, Delivery{Alert: "e1"}, "", ""},
		{r, Delivery{}, msgAlert, "e1"},
		{r, Delivery{Alert: "e1"}, msgResolution, "p1"},
		{r, Delivery{Alert: "e1", Resolution: "p1"}, "", ""},
		{&Alert{ID: "e2"}, Delivery{Alert: "e1", Resolution: "p1"}, msgAlert, "e2"},
	}
	for i, c := range cases {
		if kind, id := owed(c.a, c.d); kind != c.kind || id != c.id {
			t.Errorf("case %d: owed %s %s, want %s %s", i, kind, id, c.kind, c.id)
		}
	}
}

// TestKeyBytesAreJSON: a key's bytes pick its partition, so they stay exactly what
// encoding/json writes, whatever the strings hold.
func TestKeyBytesAreJSON(t *testing.T) {
	samples := []string{"", "acme", "brand name", "a\"b", `back\slash`, "<tag>&", "ünïcode", "tab\t", "\u2028", "bad\xffutf8", "~ok_-.0"}
	for c := 0; c < 256; c++ {
		samples = append(samples, "x"+string(rune(c))+"y", "x"+string([]byte{byte(c)})+"y")
	}
	for _, s := range samples {
		k := Key{Source: "acme", Profile: s, Platform: "x"}
		if got, want := k.bytes(), mustJSON([]string{k.Source, k.Profile, k.Platform}); string(got) != string(want) {
			t.Errorf("key of %q: %s, want %s", s, got, want)
		}
		if got, want := k.stateKey(kindAlert), mustJSON([]string{kindAlert, k.Source, k.Profile, k.Platform}); string(got) != string(want) {
			t.Errorf("state key of %q: %s, want %s", s, got, want)
		}
	}
}
