package providers_test

import (
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/event"
	"github.com/socialbridge/bridge/bridge/providers"
)

type benchCase struct {
	preset, sample, secret string
	now                    time.Time
}

var benchCases = []benchCase{
	{"codivupload", "post_published", codivSecret, time.Time{}},
	{"standard-webhooks", "sample", swSecret, swNow},
}

func BenchmarkVerify(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			p, _ := providers.Lookup(c.preset)
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
			p, _ := providers.Lookup(c.preset)
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
