package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
)

// tlsOption dials the brokers over TLS. Should a file validated at start be unreadable by
// now, every dial fails with that error, naming the key, rather than connecting without it.
func tlsOption(t config.KafkaTLS) kgo.Opt {
	cfg, err := tlsConfig(t)
	if err != nil {
		return kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return nil, err })
	}
	return kgo.DialTLSConfig(cfg)
}

// tlsConfig is the client side of TLS to the brokers: the configured CAs (else the system's),
// a client certificate if any, and the name to verify (else each broker's host, which
// franz-go sets per connection).
func tlsConfig(t config.KafkaTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca: no PEM certificate in %s", t.CA)
		}
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
