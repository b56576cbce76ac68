package schemas_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

func TestRoundTrip(t *testing.T) {
	for name, c := range codecs(t) {
		for _, typ := range event.Types {
			for fill, in := range map[string]*event.Event{"all set": everything(typ), "none set": envelope(typ)} {
				t.Run(name+"/"+typ+"/"+fill, func(t *testing.T) {
					t.Parallel() // the codecs share pooled readers and writers
					value, err := c.Encode(nil, in)
					if err != nil {
						t.Fatal(err)
					}
					got := &event.Event{Text: ptr("left over from an earlier decode")}
					if err := c.Decode(value, got); err != nil {
						t.Fatal(err)
					}
					for _, d := range diff(afterRoundTrip(t, in), got) {
						t.Error(d)
					}
				})
			}
		}
	}
}

func TestEncodeAppends(t *testing.T) {
	for name, c := range codecs(t) {
		t.Run(name, func(t *testing.T) {
			ev := everything(event.PostPublished)
			alone, err := c.Encode(nil, ev)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("keep me")
			got, err := c.Encode(slices.Clone(prefix), ev)
			if err != nil {
				t.Fatal(err)
			}
			if want := append(prefix, alone...); string(got) != string(want) {
				t.Fatalf("Encode(prefix) = %q, want %q", got, want)
			}
		})
	}
}

func TestEncodeUnknownType(t *testing.T) {
	for name, c := range codecs(t) {
		t.Run(name, func(t *testing.T) {
			ev := envelope("post.deleted")
			dst := []byte("untouched")
			got, err := c.Encode(dst, ev)
			if !errors.Is(err, schemas.ErrUnknownType) {
				t.Fatalf("err = %v, want ErrUnknownType", err)
			}
			if want := `schemas: unknown event type "post.deleted"`; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
			if string(got) != "untouched" {
				t.Errorf("dst = %q, want it unchanged", got)
			}
			if _, err := c.Encode(nil, nil); err == nil {
				t.Error("Encode(nil event) succeeded")
			}
		})
	}
}

// TestDecodeBadInput feeds every codec values it cannot have written: each must give an
// error (not a panic) and leave the event zero.
func TestDecodeBadInput(t *testing.T) {
	for name, c := range codecs(t) {
		t.Run(name, func(t *testing.T) {
			valid, err := c.Encode(nil, everything(event.PostFailed))
			if err != nil {
				t.Fatal(err)
			}
			bad := map[string][]byte{
				"nil":             nil,
				"trailing byte":   append(slices.Clone(valid), 0),
				"wrong magic":     append([]byte{0x7B}, valid[1:]...),
				"huge length":     append(slices.Clone(valid[:headerLen(valid)]), 0x02, 0xFE, 0xFF, 0xFF, 0xFF, 0x0F),
				"bad union index": unionIndex(t, c, valid),
			}
			for n := range len(valid) {
				bad["truncated at "+strconv.Itoa(n)] = valid[:n]
			}
			rng := rand.New(rand.NewChaCha8([32]byte{1}))
			for i := range 500 {
				garbage := slices.Clone(valid[:headerLen(valid)])
				for range rng.IntN(64) {
					garbage = append(garbage, byte(rng.Uint32()))
				}
				bad["garbage "+strconv.Itoa(i)] = garbage
			}
			for what, value := range bad {
				ev := everything(event.PostPublished)
				if err := c.Decode(value, ev); err == nil {
					t.Errorf("%s: Decode(%x) succeeded: %+v", what, value, ev)
				} else if !reflect.DeepEqual(*ev, event.Event{}) {
					t.Errorf("%s: Decode failed (%v) but left %+v", what, err, ev)
				}
			}
			if err := c.Decode(valid, nil); err == nil {
				t.Error("Decode into nil event succeeded")
			}
		})
	}
}

// unionIndex returns valid with the union index of its first typed field (post_id, set) made 4,
// out of range for ["null", "string"].
func unionIndex(t *testing.T, c codec, valid []byte) []byte {
	t.Helper()
	noTyped, err := c.Encode(nil, envelope(event.PostFailed))
	if err != nil {
		t.Fatal(err)
	}
	// The envelope is identical in both encodings; the first byte after it is post_id's index.
	i := 0
	for valid[i] == noTyped[i] {
		i++
	}
	out := slices.Clone(valid)
	out[i] = 0x08 // zig-zag 4
	return out
}

func headerLen(value []byte) int {
	if value[0] == 0xC3 {
		return 10
	}
	return 5
}

func TestDecodeTypeMismatch(t *testing.T) {
	so, _ := schemas.NewSingleObject()
	value, err := so.Encode(nil, envelope(event.FollowerLost))
	if err != nil {
		t.Fatal(err)
	}
	gained, _ := schemas.ForType(event.FollowerGained)
	copy(value[2:10], gained.Fingerprint[:]) // same field layout, other record
	var ev event.Event
	if err := so.Decode(value, &ev); !errors.Is(err, schemas.ErrMalformed) {
		t.Fatalf("Decode of a follower.lost body under the follower.gained fingerprint: err = %v, want ErrMalformed", err)
	}
}

func TestSingleObjectUnknownFingerprint(t *testing.T) {
	so, _ := schemas.NewSingleObject()
	value, err := so.Encode(nil, envelope(event.PostRetry))
	if err != nil {
		t.Fatal(err)
	}
	value[9] ^= 0xFF
	var ev event.Event
	if err := so.Decode(value, &ev); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Fatalf("err = %v, want ErrUnknownSchema", err)
	}
}

func TestAllAndForType(t *testing.T) {
	all := schemas.All()
	if len(all) != len(event.Types) {
		t.Fatalf("All() has %d schemas, want %d", len(all), len(event.Types))
	}
	for i, s := range all {
		if s.Type != event.Types[i] {
			t.Errorf("All()[%d].Type = %q, want %q", i, s.Type, event.Types[i])
		}
		if got, ok := schemas.ForType(s.Type); !ok || got != s {
			t.Errorf("ForType(%q) = %+v, %v; want All()[%d]", s.Type, got, ok, i)
		}
	}
	all[0].Text = "mutated"
	if s, _ := schemas.ForType(event.Types[0]); s.Text == "mutated" {
		t.Error("All() returns the package's own state")
	}
	if _, ok := schemas.ForType("post.deleted"); ok {
		t.Error(`ForType("post.deleted") found a schema`)
	}
}

func TestSubject(t *testing.T) {
	for _, tc := range []struct{ prefix, typ, want string }{
		{"social.", event.PostPublished, "social.post.published-value"},
		{"", event.FollowerLost, "follower.lost-value"},
		{"acme.", event.PostTokenExpired, "acme.post.token_expired-value"},
	} {
		if got := schemas.Subject(tc.prefix, tc.typ); got != tc.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tc.prefix, tc.typ, got, tc.want)
		}
	}
}

// typedFields is the contract the schemas keep (docs/topics.md): the typed fields of each
// event type, in order.
var typedFields = map[string][]string{
	event.PostPublished:    {"post_id", "profile_name", "platform", "platform_post_id", "platform_post_url", "scheduled_at", "published_at"},
	event.PostFailed:       {"post_id", "profile_name", "platform", "scheduled_at", "error_code", "error_message", "retryable", "attempt"},
	event.PostTokenExpired: {"post_id", "profile_name", "platform", "scheduled_at", "reconnect_url"},
	event.PostRetry:        {"post_id", "profile_name", "platform", "scheduled_at", "attempt", "next_attempt_at"},
	event.CommentReceived:  {"comment_id", "post_id", "profile_name", "platform", "platform_post_id", "author_id", "author_name", "text"},
	event.FollowerGained:   {"profile_name", "platform", "account_id", "follower_id", "follower_name"},
	event.FollowerLost:     {"profile_name", "platform", "account_id", "follower_id", "follower_name"},
}

var recordNames = map[string]string{
	event.PostPublished:    "social.events.PostPublished",
	event.PostFailed:       "social.events.PostFailed",
	event.PostTokenExpired: "social.events.PostTokenExpired",
	event.PostRetry:        "social.events.PostRetry",
	event.CommentReceived:  "social.events.CommentReceived",
	event.FollowerGained:   "social.events.FollowerGained",
	event.FollowerLost:     "social.events.FollowerLost",
}

type avscField struct {
	Name    string          `json:"name"`
	Type    json.RawMessage `json:"type"`
	Default json.RawMessage `json:"default"`
	Doc     string          `json:"doc"`
}

// TestSchemaShape pins each .avsc to the record layout of the contract, and each field to
// the event.Event field of the same avro tag and a matching Go type. A field the struct
// lacks would otherwise be written silently as its default, null.
func TestSchemaShape(t *testing.T) {
	goTypes := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[event.Event]()) {
		goTypes[f.Tag.Get("avro")] = f.Type
	}
	for _, s := range schemas.All() {
		t.Run(s.Type, func(t *testing.T) {
			var rec struct {
				Type, Name, Namespace, Doc string
				Fields                     []avscField
			}
			if err := json.Unmarshal([]byte(s.Text), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Type != "record" || rec.Namespace+"."+rec.Name != recordNames[s.Type] || s.Name != recordNames[s.Type] || rec.Doc == "" {
				t.Errorf("record %s.%s (Name %q, doc %q), want record %s with a doc", rec.Namespace, rec.Name, s.Name, rec.Doc, recordNames[s.Type])
			}
			want := append([]string{"event_id", "event_type", "source", "provider", "occurred_at", "received_at"}, typedFields[s.Type]...)
			want = append(want, "raw_payload")
			if got := schemaFields(t, s); !slices.Equal(got, want) {
				t.Fatalf("fields %v, want %v", got, want)
			}
			for i, f := range rec.Fields {
				typed := i >= 6 && i < len(rec.Fields)-1
				checkField(t, f, typed, goTypes[f.Name])
			}
		})
	}
}

func checkField(t *testing.T, f avscField, typed bool, goType reflect.Type) {
	t.Helper()
	avroFor := map[reflect.Type]string{
		reflect.TypeFor[string]():    `"string"`,
		reflect.TypeFor[time.Time](): `{"type":"long","logicalType":"timestamp-millis"}`,
		reflect.TypeFor[bool]():      `"boolean"`,
		reflect.TypeFor[int32]():     `"int"`,
		reflect.TypeFor[[]byte]():    `"bytes"`,
	}
	if goType == nil {
		t.Errorf("%s: no event.Event field has avro tag %q", f.Name, f.Name)
		return
	}
	want := "no Avro type for this Go type"
	switch {
	case typed && goType.Kind() == reflect.Pointer && avroFor[goType.Elem()] != "":
		want = `["null",` + avroFor[goType.Elem()] + `]`
	case !typed && avroFor[goType] != "":
		want = avroFor[goType]
	}
	if !sameJSON(f.Type, want) {
		t.Errorf("%s: Avro type %s for Go type %v, want %s", f.Name, f.Type, goType, want)
	}
	if typed && string(f.Default) != "null" {
		t.Errorf("%s: default %s, want null", f.Name, f.Default)
	}
	if f.Doc == "" {
		t.Errorf("%s: no doc", f.Name)
	}
}

func sameJSON(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}
