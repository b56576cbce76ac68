package bridgetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/socialbridge/bridge/internal/sender"
)

// Answer is the bridge's answer to one delivery (docs/http.md): the HTTP status code, the
// status field, and for an accepted event where Kafka stored it.
type Answer struct {
	Code      int
	Status    string // "accepted", "duplicate", "quarantined", "unauthorized", …
	EventID   string
	Topic     string
	Partition int32
	Offset    int64
	Reason    string // why a delivery was quarantined
	Body      []byte // the answer as received
}

// Send posts a realistic delivery of eventType to the first source, in its provider's
// format and signed with its secret, as the provider would, and returns the answer. Each
// call sends a new event (a new id); the answer's EventID is the id to wait for.
func (c *Container) Send(ctx context.Context, eventType string) (Answer, error) {
	return c.SendFrom(ctx, c.sources[0].Name, eventType)
}

// SendFrom is Send to the source named source.
func (c *Container) SendFrom(ctx context.Context, source, eventType string) (Answer, error) {
	i := slices.IndexFunc(c.sources, func(s sender.Source) bool { return s.Name == source })
	if i < 0 {
		return Answer{}, fmt.Errorf("bridgetest: no source %q", source)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	d, err := c.sources[i].Sample(eventType, "evt_bt_"+hex.EncodeToString(id[:]), int(id[0]), time.Now())
	if err != nil {
		return Answer{}, fmt.Errorf("bridgetest: %w", err)
	}
	a, err := sender.Post(ctx, c.http, c.url, source, d)
	if err != nil {
		return Answer{}, fmt.Errorf("bridgetest: %w", err)
	}
	return Answer(a), nil
}
