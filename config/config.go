// Package config reads the bridge's YAML configuration: defaults in one place, ${VAR}
// expansion from the environment, and a validation that refuses a bad file at start with
// a message naming the key and the problem.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration of the bridge and its reference consumers: `bridge
// serve` reads the ingress sections, `bridge consume …` the kafka, schema_registry and its
// own consumers section; each expands and validates only those (see Scope), so one file
// serves every process and none needs another's secrets.
type Config struct {
	HTTP           HTTP           `yaml:"http"`
	Kafka          Kafka          `yaml:"kafka"`
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
	Dedup          Dedup          `yaml:"dedup"`
	Spool          Spool          `yaml:"spool"`
	Sources        []Source       `yaml:"sources"`
	Consumers      Consumers      `yaml:"consumers"`
	Log            Log            `yaml:"log"`
}

// Log configures the process log.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default returns the configuration every file starts from: each section's defaults.
func Default() Config {
	return Config{
		HTTP:           defaultHTTP(),
		Kafka:          defaultKafka(),
		SchemaRegistry: SchemaRegistry{Register: true},
		Dedup:          defaultDedup(),
		Spool:          defaultSpool(),
		Consumers:      defaultConsumers(),
		Log:            Log{Level: "info", Format: "text"},
	}
}

// Load reads, expands and validates the whole file at path.
func Load(path string) (Config, error) { return LoadFor(path, Everything) }

// LoadFor reads the file at path for a command that uses scope: only that part is expanded
// and validated.
func LoadFor(path string, scope Scope) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseFor(b, os.LookupEnv, scope)
}

// Parse decodes b over the defaults, expands ${VAR} in its values with lookup, and
// validates it. Unknown keys are refused, so a typo never silently falls back to a default.
func Parse(b []byte, lookup func(string) (string, bool)) (Config, error) {
	return ParseFor(b, lookup, Everything)
}

// ParseFor is Parse for a command that uses scope: the whole of b is checked for unknown
// keys, but the sections outside scope are neither expanded nor validated, and keep their
// defaults.
func ParseFor(b []byte, lookup func(string) (string, bool), scope Scope) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Config{}, fmt.Errorf("config: %s", cleanYAMLError(err))
	}
	cfg := Default()
	if len(doc.Content) == 0 {
		err := cfg.ValidateFor(scope)
		return cfg, err
	}
	if err := unknownKeys(b); err != nil {
		return Config{}, err
	}
	scope.prune(doc.Content[0], "")
	if err := expandNode(&doc, lookup); err != nil {
		return Config{}, err
	}
	var out bytes.Buffer
	if err := yaml.NewEncoder(&out).Encode(&doc); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(&out)
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("config: %s", cleanYAMLError(err))
	}
	err := cfg.ValidateFor(scope) // before the return: it settles derived values in cfg
	return cfg, err
}

// unknownKeys reports keys the Config does not have, with their lines in the file as
// written (the value checks run later on the expanded document).
func unknownKeys(b []byte) error {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var te *yaml.TypeError
	if err := dec.Decode(&cfg); errors.As(err, &te) {
		var unknown []string
		for _, e := range te.Errors {
			if strings.Contains(e, " not found in type ") {
				unknown = append(unknown, e)
			}
		}
		if len(unknown) > 0 {
			return fmt.Errorf("config: unknown key: %s", cleanYAMLError(errors.New(strings.Join(unknown, "; "))))
		}
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandNode replaces ${VAR} in every scalar value. It works on parsed values, not on the
// text, so a secret holding YAML syntax or a '$' cannot change the document's structure.
// An unset variable is an error: a missing secret fails at start instead of becoming "".
func expandNode(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		var missing string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			v, ok := lookup(ref[2 : len(ref)-1])
			if !ok && missing == "" {
				missing = ref[2 : len(ref)-1]
			}
			return v
		})
		if missing != "" {
			return fmt.Errorf("config: line %d: environment variable %s is not set", n.Line, missing)
		}
		n.Tag, n.Style = "", n.Style&^yaml.TaggedStyle
	}
	for _, c := range n.Content {
		if err := expandNode(c, lookup); err != nil {
			return err
		}
	}
	return nil
}

func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return strings.ReplaceAll(msg, " in type config.", " in section ")
}

// Redacted returns a copy safe to log: secrets, verify tokens, passwords (also inside the
// registry's URL), the retry action's header values, the Slack webhook URL (its path is its
// credential) and a database password are masked.
func (c Config) Redacted() Config {
	out := c
	out.Sources = make([]Source, len(c.Sources))
	for i, s := range c.Sources {
		s.Secrets = make([]string, len(s.Secrets))
		for j := range s.Secrets {
			s.Secrets[j] = "[redacted]"
		}
		if s.VerifyToken != "" {
			s.VerifyToken = "[redacted]"
		}
		out.Sources[i] = s
	}
	out.SchemaRegistry = c.SchemaRegistry.redacted()
	if out.Kafka.SASL.Password != "" {
		out.Kafka.SASL.Password = "[redacted]"
	}
	out.Consumers = c.Consumers.redacted()
	out.Dedup.Redis = c.Dedup.Redis.redacted()
	return out
}
