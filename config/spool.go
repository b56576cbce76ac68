package config

import (
	"fmt"

	"github.com/socialbridge/bridge/bridge/providers"
)

// Spool configures the local spool (bridge/spool): a write-ahead log on this replica's disk
// where the deliveries of spooling sources wait while Kafka cannot take them.
type Spool struct {
	// Dir holds the spool's segment files; empty: no spool.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the segment files; past it a delivery that cannot be produced is
	// answered 503, as without a spool.
	MaxBytes int64 `yaml:"max_bytes"`
	// HorizonBelow, when positive, makes every source whose preset's sender retries for less
	// than it (providers.RetryHorizoner: postiz 0, x 5 min, …) spool unless its own spool key
	// says otherwise.
	HorizonBelow Duration `yaml:"horizon_below"`
}

func defaultSpool() Spool { return Spool{MaxBytes: 1 << 30} }

// Spools reports whether the deliveries of s go to the spool when Kafka cannot take them: its
// own spool key when set, else whether its sender's retry horizon is known and shorter than
// spool.horizon_below.
func (c *Config) Spools(s Source) bool {
	if s.Spool != nil {
		return *s.Spool && c.Spool.Dir != ""
	}
	if c.Spool.Dir == "" || c.Spool.HorizonBelow <= 0 {
		return false
	}
	p, ok := providers.Lookup(s.Provider)
	if !ok {
		return false
	}
	h, ok := providers.Horizon(p)
	return ok && h < c.Spool.HorizonBelow.D()
}

// SpoolingSources returns the names of the sources that spool.
func (c *Config) SpoolingSources() []string {
	var out []string
	for _, s := range c.Sources {
		if c.Spools(s) {
			out = append(out, s.Name)
		}
	}
	return out
}

// minSpoolBytes is the least spool.max_bytes: below it a spool would hold hardly a record.
const minSpoolBytes = 64 << 10

func (c *Config) validateSpool(bad complaint) {
	sp := c.Spool
	switch {
	case sp.MaxBytes < minSpoolBytes:
		bad("spool.max_bytes", "want at least %d, got %d", minSpoolBytes, sp.MaxBytes)
	case sp.Dir != "" && sp.MaxBytes < int64(c.Kafka.MessageBytes()):
		bad("spool.max_bytes", "%d cannot hold the largest record a delivery makes, %d bytes (kafka.max_message_bytes, derived from http.max_body_bytes)",
			sp.MaxBytes, c.Kafka.MessageBytes())
	}
	if sp.HorizonBelow < 0 {
		bad("spool.horizon_below", "must not be negative, got %s", sp.HorizonBelow)
	} else if sp.HorizonBelow > 0 && sp.Dir == "" {
		bad("spool.horizon_below", "set, but spool.dir is empty: set spool.dir to spool")
	}
}

// validateSourcesSpool checks each source's spool key against the spool section and its
// preset: a check of its own, since a command that reads the sources but not the spool
// section (simulate) must not judge one by the other's defaults.
func (c *Config) validateSourcesSpool(bad complaint) {
	for i, s := range c.Sources {
		if p, ok := providers.Lookup(s.Provider); ok {
			c.validateSourceSpool(bad, fmt.Sprintf("sources[%d]", i), s, p)
		}
	}
}

// validateSourceSpool checks a source's spool key against the spool section and its preset.
func (c *Config) validateSourceSpool(bad complaint, key string, s Source, p providers.Preset) {
	if s.Spool == nil || !*s.Spool {
		return
	}
	if c.Spool.Dir == "" {
		bad(key+".spool", "true, but spool.dir is empty: set spool.dir to spool")
	}
	if _, polled := p.(providers.Poller); polled {
		bad(key+".spool", "provider %s is polled: a poll that Kafka does not take is retried from its cursor, nothing to spool", s.Provider)
	}
}
