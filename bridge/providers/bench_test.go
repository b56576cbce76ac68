package providers_test

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

type benchCase struct {
	preset, sample, secret string
	now                    time.Time
}

var benchCases = []benchCase{
	{"codivupload", "post_published", codivSecret, time.Time{}},
	{"standard-webhooks", "sample", swSecret, swNow},
	{"ayrshare", "scheduled_success", ayrSecret, ayrNow},
	{"meta", "page_feed_comment", metaSecret, time.Time{}},
	{"x", "tweet_reply", xSecret, time.Time{}},
	{"upload-post", "upload_completed_success", urlToken, time.Time{}},
}

func BenchmarkVerify(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			p, signed := mustNew(b, c.preset).(providers.Signed)
			if !signed {
				b.Skip("signs nothing")
			}
			body, h := sample(b, c.preset, c.sample)
			keys := []*providers.Key{mustKey(b, p, c.secret)}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Verify(h, body, keys, c.now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			p := mustNew(b, c.preset)
			body, h := sample(b, c.preset, c.sample)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var ev event.Event
			for b.Loop() {
				if err := p.Normalize(h, body, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSplit splits Meta's batch of five changes, three of them events.
func BenchmarkSplit(b *testing.B) {
	sp := mustNew(b, "meta").(providers.Splitter)
	body, h := sample(b, "meta", "batch_mixed")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sp.Split(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignedTime reads the signed time of the dated presets' samples: what the replay
// check adds to a delivery, to compare with BenchmarkNormalize of the same sample.
func BenchmarkSignedTime(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			d, ok := mustNew(b, c.preset).(providers.Dated)
			if !ok {
				b.Skip("carries no signed time")
			}
			body, _ := sample(b, c.preset, c.sample)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := d.SignedTime(body); !ok {
					b.Fatal("no signed time")
				}
			}
		})
	}
}
