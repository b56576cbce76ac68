package config

import (
	"errors"
	"fmt"
)

// Validate refuses contradictions and missing values, naming the key of each problem, and
// settles what derives from other keys (Kafka.MessageBytes): validate again after a change.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	c.validateHTTP(bad)
	c.validateKafka(bad)
	c.validateRegistry(bad)
	c.validateDedup(bad)
	c.validateSpool(bad)
	c.validateSources(bad)
	c.validateConsumers(bad)
	c.validateLog(bad)
	return errors.Join(errs...)
}

type complaint func(key, format string, args ...any)

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
