package config

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/socialbridge/bridge/bridge/providers"
)

// Validate refuses contradictions and missing values, naming the key of each problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	c.validateHTTP(bad)
	c.validateKafka(bad)
	c.validateDedup(bad)
	c.validateSources(bad)
	c.validateLog(bad)
	return errors.Join(errs...)
}

type complaint func(key, format string, args ...any)

func (c *Config) validateHTTP(bad complaint) {
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "want host:port, got %q", c.HTTP.Listen)
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		bad("http.max_body_bytes", "must be positive, got %d", c.HTTP.MaxBodyBytes)
	}
	positive(bad, "http.read_timeout", c.HTTP.ReadTimeout)
	positive(bad, "http.write_timeout", c.HTTP.WriteTimeout)
	positive(bad, "http.idle_timeout", c.HTTP.IdleTimeout)
	positive(bad, "http.shutdown_timeout", c.HTTP.ShutdownTimeout)
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		bad("http.tls", "cert and key must be set together")
	}
}

func (c *Config) validateKafka(bad complaint) {
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "no brokers: name at least one host:port")
	}
	for i, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "want host:port, got %q", b)
		}
	}
	positive(bad, "kafka.produce_timeout", c.Kafka.ProduceTimeout)
	if c.Kafka.Linger < 0 {
		bad("kafka.linger", "must not be negative")
	}
	switch c.Kafka.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("kafka.compression", "want none, gzip, snappy, lz4 or zstd; got %q", c.Kafka.Compression)
	}
	if c.Kafka.Partitions <= 0 {
		bad("kafka.partitions", "must be positive, got %d", c.Kafka.Partitions)
	}
	if c.Kafka.ReplicationFactor == 0 || c.Kafka.ReplicationFactor < -1 {
		bad("kafka.replication_factor", "must be positive, or -1 for the broker default; got %d", c.Kafka.ReplicationFactor)
	}
	if c.Kafka.Retention < 0 {
		bad("kafka.retention", "must not be negative (0 keeps the broker default)")
	}
	if c.SchemaRegistry.URL != "" && !strings.HasPrefix(c.SchemaRegistry.URL, "http://") && !strings.HasPrefix(c.SchemaRegistry.URL, "https://") {
		bad("schema_registry.url", "want an http:// or https:// URL, got %q", c.SchemaRegistry.URL)
	}
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

func (c *Config) validateSources(bad complaint) {
	if len(c.Sources) == 0 {
		bad("sources", "no sources: configure at least one")
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Name == "":
			bad(key+".name", "missing")
		case !validName(s.Name):
			bad(key+".name", "%q: use letters, digits, '-', '_' and '.' only (it is a URL path segment)", s.Name)
		case seen[s.Name]:
			bad(key+".name", "duplicate source name %q", s.Name)
		}
		seen[s.Name] = true
		c.validateSecrets(bad, key, s)
	}
}

func (c *Config) validateSecrets(bad complaint, key string, s Source) {
	p, ok := providers.Lookup(s.Provider)
	if !ok {
		bad(key+".provider", "unknown provider %q (known: %s)", s.Provider, strings.Join(providers.Names(), ", "))
		return
	}
	if len(s.Secrets) == 0 {
		bad(key+".secrets", "source %q has no secret", s.Name)
	}
	for j, secret := range s.Secrets {
		if _, err := p.Key(secret); err != nil {
			// err comes from the preset, whose contract is to never echo the secret.
			bad(fmt.Sprintf("%s.secrets[%d]", key, j), "%v", err)
		}
	}
}

func (c *Config) validateLog(bad complaint) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "want text or json; got %q", c.Log.Format)
	}
}

func positive(bad complaint, key string, d Duration) {
	if d <= 0 {
		bad(key, "must be positive, got %s", d)
	}
}

func validName(s string) bool {
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
