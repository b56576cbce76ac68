package config

import (
	"fmt"
	"net"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
)

// Dedup configures duplicate detection by (source, event id).
type Dedup struct {
	// Store is where the window is kept: "memory" (one process) or "redis" (shared by
	// replicas).
	Store   string   `yaml:"store"`
	Window  Duration `yaml:"window"`
	MaxIDs  int      `yaml:"max_ids"`
	Rebuild bool     `yaml:"rebuild"`
	// Snapshot is a local file the memory store is saved to, every SnapshotEvery and at
	// shutdown, so that a restart reads it and only the records since from Kafka.
	Snapshot      string     `yaml:"snapshot"`
	SnapshotEvery Duration   `yaml:"snapshot_every"`
	Redis         DedupRedis `yaml:"redis"`
}

// DedupRedis is the Redis (7 or later, or Valkey) of dedup.store: redis.
type DedupRedis struct {
	Addr      string   `yaml:"addr"`
	Username  string   `yaml:"username"`
	Password  string   `yaml:"password"`
	DB        int      `yaml:"db"`
	TLS       bool     `yaml:"tls"`
	KeyPrefix string   `yaml:"key_prefix"`
	Lease     Duration `yaml:"lease"`
}

// SourceDedup is a source's own dedup settings.
type SourceDedup struct {
	// Window, when set, is the source's window as it is, even if shorter than its sender's
	// retry horizon.
	Window Duration `yaml:"window"`
}

// The dedup stores.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

func defaultDedup() Dedup {
	return Dedup{
		Store: StoreMemory, Window: Duration(24 * time.Hour), MaxIDs: 10_000_000, Rebuild: true,
		SnapshotEvery: Duration(5 * time.Minute),
		Redis:         DedupRedis{KeyPrefix: "bridge:dedup:", Lease: Duration(10 * time.Second)},
	}
}

// SourceWindow returns the dedup window of s: its own dedup.window when set, else the longer
// of dedup.window and the retry horizon of its provider preset.
func (c *Config) SourceWindow(s Source) time.Duration {
	if s.Dedup.Window > 0 {
		return s.Dedup.Window.D()
	}
	w := c.Dedup.Window.D()
	if p, ok := providers.Lookup(s.Provider); ok {
		if h, ok := providers.Horizon(p); ok {
			w = max(w, h)
		}
	}
	return w
}

func (c *Config) validateDedup(bad complaint) {
	positive(bad, "dedup.window", c.Dedup.Window)
	if c.Dedup.MaxIDs <= 0 {
		bad("dedup.max_ids", "must be positive, got %d", c.Dedup.MaxIDs)
	}
	switch c.Dedup.Store {
	case StoreMemory:
		if c.Dedup.Redis.Addr != "" {
			bad("dedup.redis.addr", "set, but dedup.store is %q: set dedup.store: redis to use it", c.Dedup.Store)
		}
	case StoreRedis:
		c.validateRedis(bad)
		if c.Dedup.Snapshot != "" {
			bad("dedup.snapshot", "only the memory store takes a snapshot; Redis keeps its own data")
		}
	default:
		bad("dedup.store", "want memory or redis, got %q", c.Dedup.Store)
	}
	if c.Dedup.Snapshot != "" && !c.Dedup.Rebuild {
		bad("dedup.snapshot", "is read only by the rebuild at start, and dedup.rebuild is false: set dedup.rebuild: true, or remove dedup.snapshot")
	}
	positive(bad, "dedup.snapshot_every", c.Dedup.SnapshotEvery)
}

// validateRetention checks that the topics keep what a restart rebuilds the window from.
func (c *Config) validateRetention(bad complaint) {
	if c.Kafka.Retention > 0 && c.Kafka.Retention < c.Dedup.Window {
		bad("dedup.window", "%s is longer than kafka.retention %s: a restart could not rebuild it", c.Dedup.Window, c.Kafka.Retention)
	}
}

func (c *Config) validateRedis(bad complaint) {
	r := c.Dedup.Redis
	if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		bad("dedup.redis.addr", "want host:port, got %q", r.Addr)
	}
	if r.DB < 0 {
		bad("dedup.redis.db", "must not be negative, got %d", r.DB)
	}
	positive(bad, "dedup.redis.lease", r.Lease)
}

// validateSourcesRetention checks that kafka.retention covers the window each source gets,
// which may be its sender's retry horizon.
func (c *Config) validateSourcesRetention(bad complaint) {
	for i, s := range c.Sources {
		if s.Dedup.Window >= 0 {
			c.validateSourceRetention(bad, fmt.Sprintf("sources[%d]", i), s)
		}
	}
}

func (c *Config) validateSourceRetention(bad complaint, key string, s Source) {
	w := c.SourceWindow(s)
	if c.Kafka.Retention <= 0 || c.Kafka.Retention.D() >= w {
		return
	}
	if s.Dedup.Window > 0 {
		bad(key+".dedup.window", "%s is longer than kafka.retention %s: a restart could not rebuild it", w, c.Kafka.Retention)
	} else if w > c.Dedup.Window.D() {
		bad("kafka.retention", "%s is shorter than the dedup window of source %q, %s: the retry horizon of its %s sender (set %s.dedup.window to choose another)",
			c.Kafka.Retention, s.Name, w, s.Provider, key)
	}
}

func (r DedupRedis) redacted() DedupRedis {
	if r.Password != "" {
		r.Password = "[redacted]"
	}
	return r
}
