package dedup

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSnapshotLoadsOnlyWithinTheWindow: an entry exactly a window old when the snapshot is
// loaded has expired (as expire counts it), one a nanosecond younger is loaded.
func TestSnapshotLoadsOnlyWithinTheWindow(t *testing.T) {
	const window = time.Hour
	at := time.Unix(1_700_000_000, 0)
	before := New(window, 10, Options{})
	before.markSeen(before.def, before.key("acme", "old"), at.UnixNano())
	before.markSeen(before.def, before.key("acme", "young"), at.UnixNano()+1)
	path := filepath.Join(t.TempDir(), "dedup.snapshot")
	if _, err := before.WriteSnapshot(path, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	fresh := New(window, 10, Options{Rebuilding: true})
	l, err := fresh.loadSnapshot(path, at.Add(window))
	if err != nil {
		t.Fatal(err)
	}
	if l.entries != 2 || l.ids != 1 {
		t.Fatalf("loaded %d entries, %d ids; want 2 and 1", l.entries, l.ids)
	}
	if _, ok := fresh.def.seen[fresh.key("acme", "young")]; !ok {
		t.Error("the entry younger than the window was not loaded")
	}
}

// TestSnapshotRereadNamesTheGroups: the groups a snapshot cannot fill are named in words: the
// default group as "the sources of dedup.window", a source's own by its name.
func TestSnapshotRereadNamesTheGroups(t *testing.T) {
	const window = time.Hour
	at := time.Unix(1_700_000_000, 0)
	before := New(window, 10, Options{Windows: map[string]time.Duration{"meta": 2 * window}})
	path := filepath.Join(t.TempDir(), "dedup.snapshot")
	if _, err := before.WriteSnapshot(path, at); err != nil {
		t.Fatal(err)
	}
	fresh := New(2*window, 10, Options{Windows: map[string]time.Duration{"meta": 3 * window}, Rebuilding: true})
	l, err := fresh.loadSnapshot(path, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(l.reread)
	want := []string{"meta (3h0m0s)", "the sources of dedup.window (2h0m0s)"}
	if !slices.Equal(l.reread, want) {
		t.Fatalf("reread = %q, want %q", l.reread, want)
	}
}
