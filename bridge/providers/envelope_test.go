package providers

import (
	"reflect"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
)

// TestFillKeepsTheEnvelope checks that mapping data into an event touches only its typed
// fields (the pointers): every other field, today's and any added later, is kept.
func TestFillKeepsTheEnvelope(t *testing.T) {
	var ev event.Event
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Interface().(type) {
		case string:
			f.SetString(v.Type().Field(i).Name)
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(int64(i), 0)))
		case []byte:
			f.SetBytes([]byte("raw"))
		default:
			if f.Kind() != reflect.Pointer {
				t.Fatalf("event.Event.%s: a %s; teach this test to set it", v.Type().Field(i).Name, f.Type())
			}
		}
	}
	want := ev
	obj, err := parseObject([]byte(`{"post_id":"p_1","attempt":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := mapData(obj, &ev); err != nil {
		t.Fatal(err)
	}
	if *ev.PostID != "p_1" || *ev.Attempt != 2 {
		t.Fatalf("typed fields not set: %+v", ev)
	}
	ev.PostID, ev.Attempt = nil, nil
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("mapData changed the envelope:\n got %+v\nwant %+v", ev, want)
	}
}
