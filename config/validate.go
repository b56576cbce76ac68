package config

import (
	"errors"
	"fmt"
)

// Validate refuses contradictions and missing values, naming the key of each problem, and
// settles what derives from other keys (Kafka.MessageBytes): validate again after a change.
func (c *Config) Validate() error { return c.ValidateFor(Everything) }

// ValidateFor is Validate of the sections scope uses: a check runs when scope uses every
// section it reads, so a section left at its defaults never stands in for the file's.
func (c *Config) ValidateFor(scope Scope) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, ch := range c.checks() {
		if usesAll(scope, ch.reads) {
			ch.check(bad)
		}
	}
	return errors.Join(errs...)
}

// check is one validation and the sections it reads.
type check struct {
	reads []string
	check func(complaint)
}

func (c *Config) checks() []check {
	return []check{
		{[]string{"http"}, c.validateHTTP},
		{[]string{"kafka"}, c.validateKafka},
		{[]string{"kafka", "http.max_body_bytes", "http.max_header_bytes"}, c.validateMessageBytes},
		{[]string{"schema_registry"}, c.validateRegistry},
		{[]string{"dedup"}, c.validateDedup},
		{[]string{"dedup", "kafka"}, c.validateRetention},
		{[]string{"spool", "kafka", "http.max_body_bytes", "http.max_header_bytes"}, c.validateSpool},
		{[]string{"sources"}, c.validateSources},
		{[]string{"sources", "spool"}, c.validateSourcesSpool},
		{[]string{"sources", "dedup", "kafka"}, c.validateSourcesRetention},
		{[]string{"consumers.retries"}, c.Consumers.Retries.validate},
		{[]string{"consumers.retries", "kafka"}, c.validateRetryDelays},
		{[]string{"consumers.alerts"}, c.Consumers.Alerts.validate},
		{[]string{"consumers.analytics"}, c.Consumers.Analytics.validate},
		{[]string{"log"}, c.validateLog},
	}
}

func usesAll(scope Scope, sections []string) bool {
	for _, s := range sections {
		if !scope.Uses(s) {
			return false
		}
	}
	return true
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
