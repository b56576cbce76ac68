package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// A Scope is the part of the file one command uses. One file serves every process, but each
// expands ${VAR} and validates only its own part, so the ingress never needs the consumers'
// secrets (the Slack webhook URL, the retry API's key) nor a consumer the webhook secrets.
// The whole file is still checked for unknown keys, with their lines. The sections a
// command does not use keep their defaults in the Config it gets.
type Scope struct {
	name string
	keep []string // the dotted paths used; none: every path
	drop []string // paths not used, below what keep keeps
}

// The scopes of the commands.
var (
	// Everything: every section expanded and validated (tools and tests).
	Everything = Scope{name: "the whole file"}
	// Ingress is what `bridge serve` uses: every section but consumers.
	Ingress = Scope{name: "bridge serve", drop: []string{"consumers"}}
	// RetriesGroup, AlertsGroup and AnalyticsGroup are what `bridge consume GROUP` uses: the
	// connection to Kafka and the registry, and the group's own section.
	RetriesGroup   = consumerScope("retries")
	AlertsGroup    = consumerScope("alerts")
	AnalyticsGroup = consumerScope("analytics")
	// Reader is what a command that only reads the topics uses (`bridge tail`).
	Reader = Scope{name: "a reader of the topics", keep: []string{"kafka", "schema_registry", "log", "http.max_body_bytes", "http.max_header_bytes"}}
	// Sender is what `bridge simulate` uses: the sources, to sign as they do, and where the
	// ingress listens.
	Sender = Scope{name: "a sender", keep: []string{"http", "sources", "log"}}
)

// Every Kafka client's record size limit (Kafka.MessageBytes) derives from the largest body
// the ingress takes, so the scopes that use kafka read those two keys of http too: a
// consumer that moves a record must be allowed to produce it.
func consumerScope(group string) Scope {
	return Scope{name: "bridge consume " + group, keep: []string{"kafka", "schema_registry", "log", "http.max_body_bytes", "http.max_header_bytes", "consumers." + group}}
}

// Uses reports whether the command uses the section at path (dotted, as "consumers.alerts").
func (s Scope) Uses(path string) bool {
	for _, d := range s.drop {
		if within(path, d) {
			return false
		}
	}
	if len(s.keep) == 0 {
		return true
	}
	for _, k := range s.keep {
		if within(path, k) {
			return true
		}
	}
	return false
}

// partly reports whether the scope names a path below path: then path is used in part.
func (s Scope) partly(path string) bool {
	for _, p := range append(s.keep[:len(s.keep):len(s.keep)], s.drop...) {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

func within(path, section string) bool {
	return path == section || strings.HasPrefix(path, section+".")
}

// prune removes from the mapping n, at path, every key the scope does not use.
func (s Scope) prune(n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		switch {
		case s.partly(p):
			s.prune(v, p)
		case !s.Uses(p):
			continue
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}
