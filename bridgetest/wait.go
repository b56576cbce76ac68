package bridgetest

import (
	"bytes"
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/schemas"
)

// WaitForEvent reads the topic of eventType from its start until it finds the record of
// eventID (its key), and returns it decoded. It waits for the record until ctx ends.
func (c *Container) WaitForEvent(ctx context.Context, eventType, eventID string) (*event.Event, error) {
	dec, err := c.reader()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(kafkaconn.Options(c.cfg.Kafka),
		kgo.ConsumeTopics(c.Topic(eventType)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, fmt.Errorf("bridgetest: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bridgetest: no %s record of %s in %s: %w", eventType, eventID, c.Topic(eventType), ctx.Err())
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if !bytes.Equal(r.Key, []byte(eventID)) {
				continue
			}
			var ev event.Event
			if err := dec.Decode(r.Value, &ev); err != nil {
				return nil, fmt.Errorf("bridgetest: %s@%d/%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			return &ev, nil
		}
	}
}

func (c *Container) reader() (*schemas.Reader, error) {
	rd, err := consumers.NewReader(c.cfg.SchemaRegistry)
	if err != nil {
		return nil, fmt.Errorf("bridgetest: %w", err)
	}
	return rd, nil
}
