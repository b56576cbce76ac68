package schemas_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// baseline is the directory of the schemas every current schema must stay able to read
// (BACKWARD compatibility, the schema registry's default): testdata/v1 holds the first
// committed version. Once the project tags releases, the baseline becomes the .avsc files
// of the last release tag (e.g. testdata/v1.4.0, copied from `git show v1.4.0:schemas/…`
// when tagging), so a change is checked against what consumers actually run.
const baseline = "testdata/v1"

func readBaseline(t *testing.T, typ string) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(baseline, typ+".avsc"))
	if err != nil {
		t.Fatalf("%s: no baseline schema (a new event type needs one): %v", typ, err)
	}
	return string(text)
}

func TestBackwardCompatible(t *testing.T) {
	for _, s := range schemas.All() {
		t.Run(s.Type, func(t *testing.T) {
			old := parse(t, readBaseline(t, s.Type))
			if err := avro.NewSchemaCompatibility().Compatible(parse(t, s.Text), old); err != nil {
				t.Fatalf("current %s schema cannot read data written with %s: %v", s.Type, baseline, err)
			}
		})
	}
}

// TestBackwardRoundTrip writes records with the baseline schemas, as a producer still on
// the old release would, and reads them with the registry codec of the current schemas.
// While a baseline equals the current schema the registry hands the codec the baseline's
// id at start; once they differ, the codec fetches it on first sight and resolves.
func TestBackwardRoundTrip(t *testing.T) {
	fake, cl := newFakeRegistry(t)
	for i, typ := range event.Types {
		fake.SeedSchema(schemas.Subject("social.", typ), 1, 1000+i, sr.Schema{Schema: readBaseline(t, typ)})
	}
	r, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range event.Types {
		for fill, in := range map[string]*event.Event{"all set": everything(typ), "none set": envelope(typ)} {
			t.Run(typ+"/"+fill, func(t *testing.T) {
				var got event.Event
				if err := r.Decode(confluent(t, 1000+i, readBaseline(t, typ), in), &got); err != nil {
					t.Fatal(err)
				}
				// What both versions have; a field the current one added reads as its default.
				want := keepOnly(afterRoundTrip(t, in), schemaFields(t, schemas.Schema{Text: readBaseline(t, typ)}))
				for _, d := range diff(want, &got) {
					t.Error(d)
				}
			})
		}
	}
}
