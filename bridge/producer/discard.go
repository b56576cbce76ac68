package producer

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Discard is a producer that stores nothing and acknowledges at once, numbering records as
// one partition would. It exists to measure the HTTP side of the bridge alone (the load
// benchmark's no-op baseline); never use it where records matter.
type Discard struct{ next atomic.Int64 }

// Produce acknowledges rec without sending it.
func (d *Discard) Produce(rec *kgo.Record, settle func(error)) error {
	rec.Offset = d.next.Add(1) - 1
	settle(nil)
	return nil
}
