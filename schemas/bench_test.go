package schemas_test

import (
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
)

// typical is a post.published delivery as the ingress produces it: envelope, seven typed
// fields and a 330-byte body.
func typical() *event.Event {
	raw := `{"event":"post.published","id":"evt_01J9Z8","data":{"post_id":"post_42","profile":"acme-brand","platform":"instagram","platform_post_id":"17900000000000001","url":"https://www.instagram.com/p/Cabc123/","scheduled_at":"2025-03-14T09:00:00Z","published_at":"2025-03-14T09:00:02Z"}}`
	raw += strings.Repeat(" ", 330-len(raw))
	now := time.Date(2025, 3, 14, 9, 0, 2, 123456789, time.UTC)
	return &event.Event{
		ID: "evt_01J9Z8", Type: event.PostPublished, Source: "codivupload", Provider: "codivupload",
		OccurredAt: now, ReceivedAt: now.Add(40 * time.Millisecond),
		PostID: ptr("post_42"), ProfileName: ptr("acme-brand"), Platform: ptr("instagram"),
		PlatformPostID: ptr("17900000000000001"), PlatformPostURL: ptr("https://www.instagram.com/p/Cabc123/"),
		ScheduledAt: ptr(now.Add(-2 * time.Second)), PublishedAt: ptr(now),
		Raw: []byte(raw),
	}
}

// BenchmarkEncode measures Encode of a typical event, appending to a reused buffer (as a
// producer with a pooled record buffer does) and to nil (one allocation for the value).
func BenchmarkEncode(b *testing.B) {
	ev := typical()
	for _, name := range []string{"single-object", "registry"} {
		c := codecs(b)[name]
		b.Run(name+"/reused-dst", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				var err error
				if buf, err = c.Encode(buf[:0], ev); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run(name+"/nil-dst", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(nil, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for name, c := range codecs(b) {
		value, err := c.Encode(nil, typical())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			var ev event.Event
			for b.Loop() {
				if err := c.Decode(value, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
