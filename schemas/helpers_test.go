package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// codec is what the shared round-trip suite runs against: both framings.
type codec interface {
	schemas.Encoder
	schemas.Decoder
}

// newFakeRegistry serves srfake over loopback HTTP and returns a client for it.
func newFakeRegistry(t testing.TB) (*srfake.Registry, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl
}

func newRegistryCodec(t testing.TB, prefix string) (*schemas.Registry, *srfake.Registry, *sr.Client) {
	t.Helper()
	fake, cl := newFakeRegistry(t)
	r, err := schemas.NewRegistry(t.Context(), cl, prefix, schemas.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r, fake, cl
}

// codecs returns a fresh instance of each codec, by name.
func codecs(t testing.TB) map[string]codec {
	t.Helper()
	so, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := newRegistryCodec(t, "social.")
	return map[string]codec{"single-object": so, "registry": r}
}

// at is a time with sub-millisecond digits and a zone, which the codecs must reduce to
// the same instant at millisecond precision.
func at(offset time.Duration) time.Time {
	cet := time.FixedZone("CET", 3600)
	return time.Date(2025, 3, 14, 9, 26, 53, 589793238, cet).Add(offset)
}

func ptr[T any](v T) *T { return &v }

// envelope is an event of type t with only the envelope and the raw payload set.
func envelope(t string) *event.Event {
	return &event.Event{
		ID:         "evt_" + strings.ReplaceAll(t, ".", "_"),
		Type:       t,
		Source:     "codivupload",
		Provider:   "codivupload",
		OccurredAt: at(-time.Minute),
		ReceivedAt: at(0),
		Raw:        []byte(`{"id":"evt_1","type":"` + t + `","data":{"émoji":"🚀"}}`),
	}
}

// everything is an event of type t with every typed field of every event type set.
func everything(t string) *event.Event {
	ev := envelope(t)
	ev.PostID = ptr("post_42")
	ev.ProfileName = ptr("acme-brand")
	ev.Platform = ptr("instagram")
	ev.PlatformPostID = ptr("17900000000000001")
	ev.PlatformPostURL = ptr("https://www.instagram.com/p/Cabc123/")
	ev.ScheduledAt = ptr(at(-time.Hour))
	ev.PublishedAt = ptr(at(-30 * time.Second))
	ev.ErrorCode = ptr("rate_limited")
	ev.ErrorMessage = ptr("Too many requests, «try later»")
	ev.Retryable = ptr(false) // false, not nil: must survive as a set value
	ev.Attempt = ptr(int32(3))
	ev.NextAttemptAt = ptr(at(10 * time.Minute))
	ev.ReconnectURL = ptr("https://app.example.com/reconnect/ig")
	ev.CommentID = ptr("c_1")
	ev.AuthorID = ptr("u_9")
	ev.AuthorName = ptr("Zoë")
	ev.Text = ptr("") // empty, not nil
	ev.AccountID = ptr("acct_7")
	ev.FollowerID = ptr("u_10")
	ev.FollowerName = ptr("Bob")
	return ev
}

// schemaFields are the field names of a schema's text, in order.
func schemaFields(t testing.TB, s schemas.Schema) []string {
	t.Helper()
	var rec struct {
		Fields []struct{ Name string } `json:"fields"`
	}
	if err := json.Unmarshal([]byte(s.Text), &rec); err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(rec.Fields))
	for i, f := range rec.Fields {
		names[i] = f.Name
	}
	return names
}

// afterRoundTrip is what decoding the encoding of in must give: the fields of its
// schema, times at millisecond precision; every other typed field nil.
func afterRoundTrip(t testing.TB, in *event.Event) *event.Event {
	t.Helper()
	s, ok := schemas.ForType(in.Type)
	if !ok {
		t.Fatalf("no schema for %q", in.Type)
	}
	return keepOnly(in, schemaFields(t, s))
}

// keepOnly is in with every field not named in fields zero, times at millisecond precision.
func keepOnly(in *event.Event, fields []string) *event.Event {
	keep := map[string]bool{}
	for _, n := range fields {
		keep[n] = true
	}
	out := *in
	v := reflect.ValueOf(&out).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !keep[v.Type().Field(i).Tag.Get("avro")] {
			f.SetZero()
			continue
		}
		switch x := f.Addr().Interface().(type) {
		case *time.Time:
			*x = x.Truncate(time.Millisecond)
		case **time.Time:
			if *x != nil {
				*x = ptr((*x).Truncate(time.Millisecond))
			}
		}
	}
	return &out
}

// diff lists the fields where got differs from want: times by instant, bytes by content.
func diff(want, got *event.Event) []string {
	var out []string
	w, g := reflect.ValueOf(want).Elem(), reflect.ValueOf(got).Elem()
	for i := range w.NumField() {
		name := w.Type().Field(i).Name
		a, b := w.Field(i).Interface(), g.Field(i).Interface()
		if !sameValue(a, b) {
			out = append(out, fmt.Sprintf("%s: want %s, got %s", name, show(a), show(b)))
		}
	}
	return out
}

func sameValue(a, b any) bool {
	switch a := a.(type) {
	case time.Time:
		return a.Equal(b.(time.Time))
	case *time.Time:
		b := b.(*time.Time)
		return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
	case []byte:
		return bytes.Equal(a, b.([]byte))
	}
	return reflect.DeepEqual(a, b)
}

func show(v any) string {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return fmt.Sprintf("&%v", rv.Elem().Interface())
	}
	if b, ok := v.([]byte); ok {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%v", v)
}
