// Package kafkaconn turns the kafka and schema_registry sections of the configuration into
// the franz-go clients' settings. Every client of the project (the ingress's producer, the
// reference consumers, `bridge tail`, bridgetest) starts from these, so a connection
// setting (seeds, client id, TLS, SASL, registry credentials) is configured once and
// honoured everywhere.
package kafkaconn

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/socialbridge/bridge/config"
)

// Options returns the options that connect a client to the configured cluster, with the
// largest record batch it may write (k.MessageBytes, which the topics accept: a consumer
// that moves a record to a retry or dead-letter topic writes what the bridge wrote). Callers
// append what their role needs (producer or consumer settings). k must have been validated
// (config.Validate checks the TLS files and the SASL settings, and settles MessageBytes).
func Options(k config.Kafka) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ClientID(k.ClientID),
	}
	if n := k.MessageBytes(); n > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(n)))
	}
	if k.TLS.On() {
		opts = append(opts, tlsOption(k.TLS))
	}
	if k.SASL.Mechanism != "" {
		opts = append(opts, kgo.SASL(mechanism(k.SASL)))
	}
	return opts
}

// Registry returns a client of the configured schema registry, nil when schema_registry.url
// is empty. Credentials in the URL (https://user:pass@host) become basic auth, as do
// schema_registry.username and .password, so that they never appear in an error's URL.
func Registry(r config.SchemaRegistry) (*sr.Client, error) {
	if r.URL == "" {
		return nil, nil
	}
	base, user, password := r.Endpoint()
	opts := []sr.ClientOpt{sr.URLs(base)}
	if user != "" {
		opts = append(opts, sr.BasicAuth(user, password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry at %s: %w", base, err)
	}
	return cl, nil
}
