package alerts

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
)

func sampleNotice() notice {
	s := func(v string) *string { return &v }
	ev := &event.Event{ID: "evt_1", Type: event.PostTokenExpired, Source: "acme", Provider: "codivupload",
		OccurredAt: time.Date(2026, 5, 8, 11, 59, 0, 123_000_000, time.UTC), ReceivedAt: time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC),
		ProfileName: s("brand ünïcode"), Platform: s("instagram"), PostID: s("post_1"),
		ReconnectURL: s("https://app.example.com/reconnect?p=brand&x=1"), Raw: make([]byte, 600)}
	return noticeOf(ev, &kgo.Record{Topic: "t.post.token_expired", Partition: 2, Offset: 1 << 40})
}

func TestNoticeRoundTrip(t *testing.T) {
	cases := map[string]notice{
		"expiry":   sampleNotice(),
		"empty":    {},
		"negative": {Type: event.PostPublished, OccurredAt: time.Unix(-5, 7).UTC(), Origin: origin{Partition: -1, Offset: -1}},
	}
	for name, n := range cases {
		b := n.appendTo(nil)
		got, err := readNotice(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.OccurredAt.Equal(n.OccurredAt) && got.ReceivedAt.Equal(n.ReceivedAt) {
			got.OccurredAt, got.ReceivedAt = n.OccurredAt, n.ReceivedAt
		}
		if got != n {
			t.Errorf("%s: read %+v, wrote %+v", name, got, n)
		}
	}
	if b := sampleNotice(); len(b.appendTo(nil)) > noticeSize {
		t.Errorf("a typical notice takes %d bytes, more than noticeSize %d", len(b.appendTo(nil)), noticeSize)
	}
}

func TestNoticeRefusesWhatItDidNotWrite(t *testing.T) {
	n := sampleNotice()
	good := n.appendTo(nil)
	if _, err := readNotice([]byte{0xC3, 0x01, 1, 2}); !errors.Is(err, errNotNotice) {
		t.Errorf("an Avro single-object value: %v, want errNotNotice", err)
	}
	if _, err := readNotice(nil); !errors.Is(err, errNotNotice) {
		t.Errorf("an empty value: %v, want errNotNotice", err)
	}
	for cut := 1; cut < len(good); cut++ {
		_, err := readNotice(good[:cut])
		if !errors.Is(err, errBadNotice) {
			t.Fatalf("cut to %d of %d bytes: %v, want errBadNotice", cut, len(good), err)
		}
		if cut >= 2 && strings.Contains(err.Error(), "version") { // the dead letter's reason says which
			t.Errorf("cut to %d bytes, with the right version: %v", cut, err)
		}
	}
	bad := map[string][]byte{
		"trailing bytes": append(append([]byte{}, good...), 0),
		"later version":  append([]byte{noticeMagic, noticeVersion + 1}, good[2:]...),
		"huge length":    {noticeMagic, noticeVersion, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F},
		"nanoseconds ≥ 1s": append(binary.AppendUvarint([]byte{noticeMagic, noticeVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1e9),
			0, 0, 0, 0, 0),
	}
	for name, b := range bad {
		if _, err := readNotice(b); !errors.Is(err, errBadNotice) {
			t.Errorf("%s: %v, want errBadNotice", name, err)
		}
	}
}
