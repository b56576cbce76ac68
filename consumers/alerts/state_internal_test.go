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
	none := Published{}
	first, alerted := expire(nil, none, ev(event.PostTokenExpired, "e1", t0), cool)
	if !alerted || first.Until != t0.Add(cool) {
		t.Fatalf("first expiry: alerted %v, %+v", alerted, first)
	}
	cases := []struct {
		name string
		cur  *Alert
		last Published
		ev   *notice
		want bool
	}{
		{"same event again", first, none, ev(event.PostTokenExpired, "e1", t0), false},
		{"inside the cool-down", first, none, ev(event.PostTokenExpired, "e2", t0.Add(59*time.Minute)), false},
		{"after the cool-down", first, none, ev(event.PostTokenExpired, "e3", t0.Add(cool)), true},
		{"publish after the expiry resolves", first, none, ev(event.PostPublished, "p1", t0.Add(time.Minute)), true},
		{"publish at the expiry's instant resolves", first, none, ev(event.PostPublished, "p1", t0), true},
		{"publish before the expiry does not", first, none, ev(event.PostPublished, "p0", t0.Add(-time.Minute)), false},
		{"publish without an alert does nothing", nil, none, ev(event.PostPublished, "p2", t0), false},
		{"expiry before a publish already seen", nil, Published{ID: "p3", At: t0.Add(time.Minute)}, ev(event.PostTokenExpired, "e4", t0), false},
		{"expiry at a publish's instant", nil, Published{ID: "p3", At: t0}, ev(event.PostTokenExpired, "e4", t0), false},
		{"expiry after the last publish", nil, Published{ID: "p3", At: t0}, ev(event.PostTokenExpired, "e4", t0.Add(time.Second)), true},
	}
	for _, c := range cases {
		var got bool
		if c.ev.Type == event.PostPublished {
			_, got, _ = publish(c.cur, c.last, c.ev)
		} else {
			_, got = expire(c.cur, c.last, c.ev, cool)
		}
		if got != c.want {
			t.Errorf("%s: changed %v, want %v", c.name, got, c.want)
		}
	}
	resolved, _, last := publish(first, none, ev(event.PostPublished, "p1", t0.Add(time.Minute)))
	if last.ID != "p1" {
		t.Errorf("last publish after p1: %+v", last)
	}
	if _, again, _ := publish(resolved, last, ev(event.PostPublished, "p3", t0.Add(2*time.Minute))); again {
		t.Error("a second publish resolved again")
	}
	if _, a := expire(resolved, last, ev(event.PostTokenExpired, "e4", t0.Add(2*time.Minute)), cool); !a {
		t.Error("an expiry after the resolution, inside the old cool-down, did not alert: resolving ends it")
	}
	if _, a := expire(resolved, none, ev(event.PostTokenExpired, "e5", t0.Add(30*time.Second)), cool); a {
		t.Error("an expiry older than the resolution alerted (state without a publish record)")
	}
	_, _, later := publish(resolved, last, ev(event.PostPublished, "p4", t0.Add(3*time.Hour)))
	if _, a := expire(resolved, later, ev(event.PostTokenExpired, "e6", t0.Add(2*time.Hour)), cool); a {
		t.Error("an expiry older than the last publish, after the resolution, alerted")
	}
	if _, _, l := publish(nil, later, ev(event.PostPublished, "p0", t0)); l != later {
		t.Errorf("an older publish moved the last publish back: %+v", l)
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
	// One string that needs escaping sends the whole key through encoding/json, so each
	// character is also tried in a key of nothing else: the plain path must refuse it alone.
	for c := 0; c < 256; c++ {
		for _, s := range []string{string(rune(c)), string([]byte{byte(c)})} {
			k := Key{Profile: s}
			if got, want := k.bytes(), mustJSON([]string{"", s, ""}); string(got) != string(want) {
				t.Errorf("key of %q alone: %s, want %s", s, got, want)
			}
		}
	}
}

// TestForgettableWaitsForTheResolution: a settled key is kept until its last event is
// forget_after old, its resolution included, also in state written before publish
// records existed, where the resolution is the only record of the key's last publish.
func TestForgettableWaitsForTheResolution(t *testing.T) {
	t0 := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	const horizon = time.Hour
	a := &Alert{ID: "e1", RaisedAt: t0, Until: t0.Add(10 * time.Minute), Resolution: &Resolution{ID: "p1", At: t0.Add(30 * time.Minute)}}
	sent := Delivery{Alert: "e1", Resolution: "p1"}
	for _, c := range []struct {
		now  time.Time
		want bool
	}{{t0.Add(30*time.Minute + horizon), false}, {t0.Add(30*time.Minute + horizon + time.Nanosecond), true}} {
		if got := forgettable(a, Published{}, sent, c.now, horizon); got != c.want {
			t.Errorf("resolved at +30m, forget_after 1h, at %s: forgettable %v, want %v", c.now.Sub(t0), got, c.want)
		}
	}
}
