package config

import "time"

// Dedup configures duplicate detection by (source, event id).
type Dedup struct {
	Window  Duration `yaml:"window"`
	MaxIDs  int      `yaml:"max_ids"`
	Rebuild bool     `yaml:"rebuild"`
}

func defaultDedup() Dedup {
	return Dedup{Window: Duration(24 * time.Hour), MaxIDs: 10_000_000, Rebuild: true}
}

func (c *Config) validateDedup(bad complaint) {
	positive(bad, "dedup.window", c.Dedup.Window)
	if c.Dedup.MaxIDs <= 0 {
		bad("dedup.max_ids", "must be positive, got %d", c.Dedup.MaxIDs)
	}
	if c.Kafka.Retention > 0 && c.Kafka.Retention < c.Dedup.Window {
		bad("dedup.window", "%s is longer than kafka.retention %s: a restart could not rebuild it", c.Dedup.Window, c.Kafka.Retention)
	}
}
