package alerts

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// RunWith is Run with the metrics registered with reg, for tests to read them.
func RunWith(reg *prometheus.Registry) func(context.Context, config.Config, *slog.Logger) error {
	return func(ctx context.Context, cfg config.Config, log *slog.Logger) error {
		g, err := New(ctx, cfg, log, Options{Registry: reg})
		if err != nil {
			return err
		}
		return g.Run(ctx)
	}
}

// KeyState is one key's state as the group's load reads it.
type KeyState struct {
	Alert     *Alert
	Published Published
	Delivery  *Delivery
}

// LoadState reads the state topic of cfg's group as a member reads it when a partition is
// assigned, and returns the state of each key and how many records it read.
func LoadState(ctx context.Context, cfg config.Config, partitions int) (map[Key]KeyState, int, error) {
	writer, err := kgo.NewClient(append(kafkaconn.Options(cfg.Kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, 0, err
	}
	defer writer.Close()
	ids := make([]int32, partitions)
	for i := range ids {
		ids[i] = int32(i)
	}
	ps, n, err := load(ctx, cfg.Kafka, writer, State(cfg.Kafka.TopicPrefix), ids)
	if err != nil {
		return nil, n, err
	}
	out := map[Key]KeyState{}
	for _, p := range ps {
		p.eachKey(&changes{}, func(k Key) {
			s := KeyState{Alert: p.alerts[k], Published: p.published[k]}
			if d, ok := p.deliveries[k]; ok {
				s.Delivery = &d
			}
			out[k] = s
		})
	}
	return out, n, nil
}
