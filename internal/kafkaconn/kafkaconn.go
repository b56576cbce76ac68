// Package kafkaconn turns the kafka section of the configuration into the franz-go options
// that reach the cluster. Every client of the project (the ingress's producer, the
// reference consumers, `bridge tail`) starts from these, so a connection setting (seeds,
// client id, TLS, SASL) is configured once and honoured everywhere.
package kafkaconn

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
)

// Options returns the options that connect a client to the configured cluster. Callers
// append what their role needs (producer or consumer settings). k must have been validated
// (config.Validate checks the TLS files and the SASL settings).
func Options(k config.Kafka) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ClientID(k.ClientID),
	}
	if k.TLS.On() {
		opts = append(opts, tlsOption(k.TLS))
	}
	if k.SASL.Mechanism != "" {
		opts = append(opts, kgo.SASL(mechanism(k.SASL)))
	}
	return opts
}
