package service

import (
	"context"
	"fmt"

	"github.com/socialbridge/bridge/bridge/poll"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/topics"
)

// startPolls prepares the polled sources (post-bridge): their cursors' topic, created when
// the bridge creates topics and required otherwise, and a Poller that runs once the bridge
// listens.
func (s *Service) startPolls(ctx context.Context) error {
	sources := polledSources(s.cfg.Sources)
	if len(sources) == 0 {
		return nil
	}
	k := s.cfg.Kafka
	cursors := poll.NewKafkaCursors(s.cl, k.TopicPrefix)
	err := withTimeout(ctx, func(ctx context.Context) error {
		return topics.Ensure(ctx, s.cl, k, s.log, poll.Topic(k.TopicPrefix))
	})
	if err != nil {
		return fmt.Errorf("kafka at %v: %w", k.Brokers, err)
	}
	s.poller = poll.New(poll.Options{
		Sources: sources, Sink: s.server, Cursors: cursors, Log: s.log, Registerer: s.metrics.Registry,
	})
	return nil
}

// polledSources are the sources whose preset is polled, each with the last of its secrets,
// the current one, as its API key.
func polledSources(cfg []config.Source) []poll.Source {
	var out []poll.Source
	for _, c := range cfg {
		p, _ := providers.New(c.Provider, c.Settings()) // the configuration was validated
		poller, ok := p.(providers.Poller)
		if !ok || c.Poll == nil || len(c.Secrets) == 0 {
			continue
		}
		out = append(out, poll.Source{
			Name: c.Name, Preset: poller, APIKey: c.Secrets[len(c.Secrets)-1],
			BaseURL: c.Poll.BaseURL, Interval: c.Poll.Interval.D(),
		})
	}
	return out
}

// runPolls polls in the background until ctx ends; Shutdown waits for it.
func (s *Service) runPolls(ctx context.Context) {
	if s.poller == nil {
		return
	}
	s.watcher.Go(func() { s.poller.Run(ctx) })
}
