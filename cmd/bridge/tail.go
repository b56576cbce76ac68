package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// tailFlags are the settings of one `bridge tail` run.
type tailFlags struct {
	config, registry, prefix string
	brokers                  []string
	fromBeginning, follow    bool
}

func tailCommand() *cobra.Command {
	var f tailFlags
	cmd := &cobra.Command{
		Use:   "tail [TYPE|TOPIC ...] [flags]",
		Short: "Print the bridge's records as JSON lines, with their Avro values decoded",
		Long: `Print each record of the bridge's topics as one JSON line: topic, partition, offset,
timestamp, key, headers and the value, decoded from Avro (by its single-object fingerprint,
or by its schema id through the schema registry), with raw_payload as text. Values of the
deadletter topic are the raw bodies, shown as text.

Arguments pick the topics: an event type (post.failed) or "deadletter" means
{prefix}post.failed; anything else is a topic name as is. By default: every event topic and
the deadletter.

With --from-beginning it prints what the topics hold and stops at their end (their high
watermarks at the start), or goes on with --follow. Without it, it starts at the end and
follows. Ctrl-C stops it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return tail(cmd.Context(), f, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "take kafka and schema_registry from this configuration file")
	fl.StringSliceVar(&f.brokers, "brokers", nil, "seed brokers, host:port (default: the file's, else 127.0.0.1:9092)")
	fl.StringVar(&f.registry, "registry", "", "schema registry URL, to decode values written with one (default: the file's)")
	fl.StringVar(&f.prefix, "prefix", "", `topic prefix (default: the file's kafka.topic_prefix, else "social.")`)
	fl.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record instead of the end")
	fl.BoolVar(&f.follow, "follow", false, "keep printing new records after reaching the end")
	return cmd
}

// tailSettings resolves the connection and the registry from the file and the flags.
func tailSettings(f tailFlags) (config.Kafka, config.SchemaRegistry, error) {
	cfg := config.Default()
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	if f.config != "" {
		var err error
		if cfg, err = config.LoadFor(f.config, config.Reader); err != nil {
			return config.Kafka{}, config.SchemaRegistry{}, err
		}
	}
	if len(f.brokers) > 0 {
		cfg.Kafka.Brokers = f.brokers
	}
	if f.prefix != "" {
		cfg.Kafka.TopicPrefix = f.prefix
	}
	if f.registry != "" {
		cfg.SchemaRegistry = config.SchemaRegistry{URL: f.registry}
	}
	return cfg.Kafka, cfg.SchemaRegistry, nil
}

// tailTopics maps the arguments to topic names; none means every topic the bridge writes.
func tailTopics(prefix string, args []string) []string {
	if len(args) == 0 {
		return event.Topics(prefix)
	}
	topics := make([]string, len(args))
	for i, a := range args {
		topics[i] = a
		if event.Known(a) || a == event.QuarantineSuffix {
			topics[i] = prefix + a
		}
	}
	return topics
}

func tail(ctx context.Context, f tailFlags, args []string, stdout, stderr io.Writer) error {
	k, reg, err := tailSettings(f)
	if err != nil {
		return err
	}
	dec, err := newValueDecoder(reg)
	if err != nil {
		return err
	}
	topics := tailTopics(k.TopicPrefix, args)
	start := kgo.NewOffset().AtEnd()
	if f.fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	opts := append(kafkaconn.Options(k), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(start),
		kgo.KeepControlRecords()) // so that every offset below the high watermark is seen
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("tail: kafka client: %w", err)
	}
	defer cl.Close()
	var ends marks
	if f.fromBeginning && !f.follow {
		if ends, err = highWatermarks(ctx, kadm.NewClient(cl), topics, stderr); err != nil {
			return err
		}
	}
	w := &lineWriter{out: stdout, dec: dec, deadletter: event.QuarantineTopic(k.TopicPrefix)}
	return consume(ctx, cl, ends, w, stderr)
}

// marks holds, per topic and partition, the offset up to which records remain to be read.
type marks map[string]map[int32]int64

// highWatermarks lists the end of every partition of topics that holds records; a topic
// that does not exist yet is reported and left out.
func highWatermarks(ctx context.Context, adm *kadm.Client, topics []string, stderr io.Writer) (marks, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("tail: listing offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("tail: listing offsets: %w", err)
	}
	m := marks{}
	for _, t := range topics {
		if _, ok := ends[t]; !ok {
			fmt.Fprintf(stderr, "tail: topic %s does not exist\n", t)
		}
	}
	ends.Each(func(o kadm.ListedOffset) {
		s, ok := starts.Lookup(o.Topic, o.Partition)
		if o.Err != nil || !ok || s.Err != nil || o.Offset <= s.Offset {
			return // empty, or gone
		}
		if m[o.Topic] == nil {
			m[o.Topic] = map[int32]int64{}
		}
		m[o.Topic][o.Partition] = o.Offset
	})
	return m, nil
}

// take reports whether r lies below its partition's mark, and forgets the mark once r is
// the last record under it. Records past the marks arrived after the start: not printed.
func (m marks) take(r *kgo.Record) bool {
	end, ok := m[r.Topic][r.Partition]
	if !ok || r.Offset >= end {
		return false
	}
	if r.Offset+1 >= end {
		delete(m[r.Topic], r.Partition)
		if len(m[r.Topic]) == 0 {
			delete(m, r.Topic)
		}
	}
	return true
}

// consume prints records until ctx ends or, when ends is not nil, every partition in it
// has been read up to its mark.
func consume(ctx context.Context, cl *kgo.Client, ends marks, w *lineWriter, stderr io.Writer) error {
	if ends != nil && len(ends) == 0 {
		return nil
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil // Ctrl-C is how a follow ends
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				fmt.Fprintf(stderr, "tail: %s[%d]: %v\n", t, p, err)
			}
		})
		var werr error
		fs.EachRecord(func(r *kgo.Record) {
			if ends != nil && !ends.take(r) || r.Attrs.IsControl() || werr != nil {
				return
			}
			werr = w.write(r)
		})
		if werr != nil || ends != nil && len(ends) == 0 {
			return werr
		}
	}
}
