package schemas_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

func TestRegistrySubjects(t *testing.T) {
	for _, prefix := range []string{"social.", "acme."} {
		t.Run(prefix, func(t *testing.T) {
			r, _, cl := newRegistryCodec(t, prefix)
			for _, s := range schemas.All() {
				subject := prefix + s.Type + "-value"
				got, err := cl.SchemaByVersion(t.Context(), subject, -1)
				if err != nil {
					t.Fatalf("subject %s: %v", subject, err)
				}
				if got.Type != sr.TypeAvro || got.Schema.Schema != s.Text {
					t.Errorf("subject %s holds %s schema %q, want our Avro text", subject, got.Type, got.Schema.Schema)
				}
				value, err := r.Encode(nil, envelope(s.Type))
				if err != nil {
					t.Fatal(err)
				}
				if value[0] != 0 || int(binary.BigEndian.Uint32(value[1:5])) != got.ID {
					t.Errorf("%s: header % x, want 00 + id %d", s.Type, value[:5], got.ID)
				}
			}
		})
	}
}

// TestRegistryIdempotent starts a second codec (a restart, or another replica) against a
// registry that has the schemas already: same ids, no new versions.
func TestRegistryIdempotent(t *testing.T) {
	first, _, cl := newRegistryCodec(t, "social.")
	second, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range event.Types {
		a, _ := first.Encode(nil, envelope(typ))
		b, _ := second.Encode(nil, envelope(typ))
		if string(a[:5]) != string(b[:5]) {
			t.Errorf("%s: headers % x and % x", typ, a[:5], b[:5])
		}
		versions, err := cl.SubjectVersions(t.Context(), schemas.Subject("social.", typ))
		if err != nil || len(versions) != 1 {
			t.Errorf("%s: versions %v, %v; want exactly one", typ, versions, err)
		}
	}
}

func TestRegistryRefused(t *testing.T) {
	fake, cl := newFakeRegistry(t)
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "post.retry") {
			return false
		}
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
		return true
	})
	_, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{})
	if err == nil || !strings.Contains(err.Error(), `"social.post.retry-value"`) {
		t.Fatalf("err = %v, want one naming the subject social.post.retry-value", err)
	}
}

// olderPostPublished is a plausible earlier version of post.published: without the
// platform_post_url field, which the current schema adds with a null default.
func olderPostPublished(t *testing.T) string {
	t.Helper()
	s, _ := schemas.ForType(event.PostPublished)
	var rec map[string]any
	if err := json.Unmarshal([]byte(s.Text), &rec); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, f := range rec["fields"].([]any) {
		if f.(map[string]any)["name"] != "platform_post_url" {
			kept = append(kept, f)
		}
	}
	rec["fields"] = kept
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// confluent frames an Avro body written by hand, as another producer would.
func confluent(t *testing.T, id int, schemaText string, v any) []byte {
	t.Helper()
	body, err := avro.Marshal(parse(t, schemaText), v)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body...)
}

// TestRegistryReadsOlderVersion: a record written with version 1 of the subject, before
// this codec registered version 2, is fetched by id once and read as the current schema.
func TestRegistryReadsOlderVersion(t *testing.T) {
	fake, cl := newFakeRegistry(t)
	subject := schemas.Subject("social.", event.PostPublished)
	older := olderPostPublished(t)
	fake.SeedSchema(subject, 1, 100, sr.Schema{Schema: older})
	var fetches atomic.Int32
	fake.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/schemas/ids/100" {
			fetches.Add(1)
		}
		return false
	})
	r, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := everything(event.PostPublished)
	value := confluent(t, 100, older, in)
	want := afterRoundTrip(t, in)
	want.PlatformPostURL = nil // not in the older schema: the current default
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var got event.Event
			if err := r.Decode(value, &got); err != nil {
				t.Error(err)
				return
			}
			for _, d := range diff(want, &got) {
				t.Error(d)
			}
		})
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("schema id 100 fetched %d times, want once", n)
	}
}

func TestRegistryUnknownIDs(t *testing.T) {
	r, fake, _ := newRegistryCodec(t, "social.")
	fake.SeedSchema("elsewhere-value", 1, 200, sr.Schema{Schema: `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"}]}`})
	fake.SeedSchema("json-value", 1, 201, sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON})
	ev := envelope(event.PostPublished)
	for id, what := range map[int]string{200: "other record", 201: "JSON schema", 999: "absent"} {
		var got event.Event
		err := r.Decode(confluent(t, id, `"string"`, ev.ID), &got)
		if !errors.Is(err, schemas.ErrUnknownSchema) {
			t.Errorf("%s (id %d): err = %v, want ErrUnknownSchema", what, id, err)
		}
	}
}

// parse parses schema text with a cache of its own, so versions of one record can coexist.
func parse(t *testing.T, text string) avro.Schema {
	t.Helper()
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRegistryFetchFailureIsTransient: while the registry fails, a new id is an error that
// is not ErrUnknownSchema; once it answers again, the same value decodes.
func TestRegistryFetchFailureIsTransient(t *testing.T) {
	r, fake, _ := newRegistryCodec(t, "social.")
	older := olderPostPublished(t)
	fake.SeedSchema("legacy-value", 1, 300, sr.Schema{Schema: older})
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	value := confluent(t, 300, older, envelope(event.PostPublished))
	var got event.Event
	if err := r.Decode(value, &got); err == nil || errors.Is(err, schemas.ErrUnknownSchema) {
		t.Fatalf("registry down: err = %v, want a transient error", err)
	}
	fake.ClearInterceptors()
	if err := r.Decode(value, &got); err != nil {
		t.Fatalf("registry back: %v", err)
	}
}

// TestRegistryReaderRegistersNothing reads records written by another codec through the
// registry, and leaves the registry as it found it.
func TestRegistryReaderRegistersNothing(t *testing.T) {
	writer, _, cl := newRegistryCodec(t, "social.")
	before, err := cl.Subjects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	reader, err := schemas.NewRegistryReader(cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range event.Types {
		value, err := writer.Encode(nil, everything(typ))
		if err != nil {
			t.Fatal(err)
		}
		var got event.Event
		if err := reader.Decode(value, &got); err != nil || got.Type != typ || got.ID != everything(typ).ID {
			t.Errorf("%s: decoded %q %q, %v", typ, got.Type, got.ID, err)
		}
		if _, err := reader.Encode(nil, envelope(typ)); !errors.Is(err, schemas.ErrUnknownType) {
			t.Errorf("%s: a reader encoded: %v", typ, err)
		}
	}
	after, err := cl.Subjects(t.Context())
	if err != nil || len(after) != len(before) {
		t.Fatalf("subjects %v before, %v after (%v)", before, after, err)
	}
	if _, err := schemas.NewRegistryReader(nil); err == nil {
		t.Fatal("a reader without a client")
	}
}

// TestReaderTellsFramingsApart decodes values of both codecs with one Reader, and refuses a
// registry-framed value when it has no registry.
func TestReaderTellsFramingsApart(t *testing.T) {
	reg, _, cl := newRegistryCodec(t, "social.")
	single, _ := schemas.NewSingleObject()
	withRegistry, err := schemas.NewReader(cl)
	if err != nil {
		t.Fatal(err)
	}
	without, _ := schemas.NewReader(nil)
	for _, typ := range event.Types {
		fromSingle, _ := single.Encode(nil, everything(typ))
		fromRegistry, _ := reg.Encode(nil, everything(typ))
		var got event.Event
		for name, c := range map[string]struct {
			r     *schemas.Reader
			value []byte
		}{"single by reader with registry": {withRegistry, fromSingle}, "registry": {withRegistry, fromRegistry}, "single": {without, fromSingle}} {
			if err := c.r.Decode(c.value, &got); err != nil || got.Type != typ {
				t.Errorf("%s %s: %q %v", typ, name, got.Type, err)
			}
		}
		if err := without.Decode(fromRegistry, &got); !errors.Is(err, schemas.ErrUnknownSchema) || got.Type != "" {
			t.Errorf("%s: registry value without a registry: %v, %q", typ, err, got.Type)
		}
	}
	var got event.Event
	if err := without.Decode(nil, &got); !errors.Is(err, schemas.ErrMalformed) {
		t.Errorf("empty value: %v", err)
	}
}

// TestRegistryLookUp: with LookUp the codec finds each schema's id under its subject, as
// registered by someone else (any id), and never registers anything: read-only credentials.
func TestRegistryLookUp(t *testing.T) {
	fake, cl := newFakeRegistry(t)
	ids := map[string]int{}
	for i, s := range schemas.All() {
		ids[s.Type] = 700 + i
		fake.SeedSchema(schemas.Subject("social.", s.Type), 1, ids[s.Type], sr.Schema{Schema: s.Text})
	}
	var writes atomic.Int32
	fake.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/versions") {
			writes.Add(1)
		}
		return false
	})
	r, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{LookUp: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range event.Types {
		value, err := r.Encode(nil, envelope(typ))
		if err != nil {
			t.Fatal(err)
		}
		if got := int(binary.BigEndian.Uint32(value[1:5])); got != ids[typ] {
			t.Errorf("%s: schema id %d, want the registered %d", typ, got, ids[typ])
		}
		var back event.Event
		if err := r.Decode(value, &back); err != nil || back.Type != typ {
			t.Errorf("%s: decode %v %q", typ, err, back.Type)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d schemas registered; want none", n)
	}
}

// TestRegistryLookUpMissing: a subject without the schema is an error naming it.
func TestRegistryLookUpMissing(t *testing.T) {
	fake, cl := newFakeRegistry(t)
	for _, s := range schemas.All() {
		if s.Type != event.PostRetry {
			fake.SeedSchema(schemas.Subject("social.", s.Type), 1, 800+len(s.Type), sr.Schema{Schema: s.Text})
		}
	}
	_, err := schemas.NewRegistry(t.Context(), cl, "social.", schemas.RegistryOptions{LookUp: true})
	if err == nil || !strings.Contains(err.Error(), `"social.post.retry-value"`) {
		t.Fatalf("err = %v, want one naming social.post.retry-value", err)
	}
	if fake.SubjectExists("social.post.retry-value") {
		t.Error("the missing subject was registered")
	}
}
