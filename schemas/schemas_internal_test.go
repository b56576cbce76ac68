package schemas

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/socialbridge/bridge/event"
)

func TestLoadRefuses(t *testing.T) {
	good := fstest.MapFS{}
	for _, typ := range event.Types {
		text, err := files.ReadFile(typ + ".avsc")
		if err != nil {
			t.Fatal(err)
		}
		good[typ+".avsc"] = &fstest.MapFile{Data: text}
	}
	if _, err := load(good); err != nil {
		t.Fatalf("load(embedded files) = %v", err)
	}
	for name, change := range map[string]func(fstest.MapFS){
		"stray schema":   func(fs fstest.MapFS) { fs["post.deleted.avsc"] = good["post.retry.avsc"] },
		"missing schema": func(fs fstest.MapFS) { delete(fs, "follower.lost.avsc") },
		"not JSON":       func(fs fstest.MapFS) { fs["post.retry.avsc"] = &fstest.MapFile{Data: []byte("{")} },
		"not a record":   func(fs fstest.MapFS) { fs["post.retry.avsc"] = &fstest.MapFile{Data: []byte(`"string"`)} },
	} {
		fs := fstest.MapFS{}
		for k, v := range good {
			fs[k] = v
		}
		change(fs)
		if _, err := load(fs); err == nil {
			t.Errorf("%s: load succeeded", name)
		}
	}
}

// TestCanonicalForm covers the schema kinds our .avsc files do not use yet.
func TestCanonicalForm(t *testing.T) {
	s, err := parse(`{"type":"record","name":"R","namespace":"n","doc":"dropped","fields":[
		{"name":"a","type":{"type":"array","items":{"type":"enum","name":"E","symbols":["X","Y"]}}},
		{"name":"m","type":{"type":"map","values":{"type":"fixed","name":"F","size":4}}},
		{"name":"e","type":"E","default":"X"},
		{"name":"t","type":{"type":"int","logicalType":"date"}},
		{"name":"r","type":["null","R"],"default":null}]}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"n.R","type":"record","fields":[` +
		`{"name":"a","type":{"type":"array","items":{"name":"n.E","type":"enum","symbols":["X","Y"]}}},` +
		`{"name":"m","type":{"type":"map","values":{"name":"n.F","type":"fixed","size":4}}},` +
		`{"name":"e","type":"n.E"},{"name":"t","type":"int"},{"name":"r","type":["null","n.R"]}]}`
	var b strings.Builder
	if err := canonical(&b, s); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("canonical form\n got %s\nwant %s", b.String(), want)
	}
}
