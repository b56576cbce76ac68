package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"
)

// Kafka configures the connection to the cluster, the producer and the topics.
type Kafka struct {
	Brokers           []string `yaml:"brokers"`
	ClientID          string   `yaml:"client_id"`
	TopicPrefix       string   `yaml:"topic_prefix"`
	ProduceTimeout    Duration `yaml:"produce_timeout"`
	Linger            Duration `yaml:"linger"`
	Compression       string   `yaml:"compression"`
	CreateTopics      bool     `yaml:"create_topics"`
	Partitions        int32    `yaml:"partitions"`
	ReplicationFactor int16    `yaml:"replication_factor"`
	Retention         Duration `yaml:"retention"`
	MaxBufferedBytes  int      `yaml:"max_buffered_bytes"`

	TLS  KafkaTLS  `yaml:"tls"`
	SASL KafkaSASL `yaml:"sasl"`
}

func defaultKafka() Kafka {
	return Kafka{
		ClientID:          "social-webhook-bridge",
		TopicPrefix:       "social.",
		ProduceTimeout:    Duration(5 * time.Second),
		Compression:       "lz4",
		CreateTopics:      true,
		Partitions:        6,
		ReplicationFactor: -1,
		Retention:         Duration(7 * 24 * time.Hour),
		MaxBufferedBytes:  64 << 20,
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
	c.Kafka.TLS.validate(bad)
	c.Kafka.SASL.validate(bad, c.Kafka.TLS.On())
}

// validateBuffered checks the producer's buffer against the largest body it must hold.
func (c *Config) validateBuffered(bad complaint) {
	if min := 2 * c.HTTP.MaxBodyBytes; c.Kafka.MaxBufferedBytes < min {
		bad("kafka.max_buffered_bytes", "must be at least twice http.max_body_bytes (%d), got %d", min, c.Kafka.MaxBufferedBytes)
	}
}

// KafkaTLS configures TLS to the brokers. It is on when enabled or any file is set; without a
// CA file the system's roots are trusted.
type KafkaTLS struct {
	Enabled    bool   `yaml:"enabled"`
	CA         string `yaml:"ca"`          // PEM file of the CAs to trust instead of the system's
	Cert       string `yaml:"cert"`        // PEM file of a client certificate, for brokers that ask for one
	Key        string `yaml:"key"`         // PEM file of its private key
	ServerName string `yaml:"server_name"` // the name brokers' certificates must carry; default each broker's host
}

// On reports whether connections to the brokers use TLS.
func (t KafkaTLS) On() bool {
	return t.Enabled || t.CA != "" || t.Cert != "" || t.Key != "" || t.ServerName != ""
}

// KafkaSASL configures SASL authentication to the brokers; no mechanism, no SASL.
type KafkaSASL struct {
	Mechanism string `yaml:"mechanism"` // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// The SASL mechanisms the bridge speaks.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// validate checks that the files can be read and hold what they should, so that a bad path
// fails at start, named, rather than at the first connection.
func (t KafkaTLS) validate(bad complaint) {
	if t.CA != "" {
		if pem, err := os.ReadFile(t.CA); err != nil {
			bad("kafka.tls.ca", "cannot read the CA file: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			bad("kafka.tls.ca", "no PEM certificate in %s", t.CA)
		}
	}
	switch {
	case t.Cert != "" && t.Key == "":
		bad("kafka.tls.key", "a client certificate (kafka.tls.cert) needs its key")
	case t.Cert == "" && t.Key != "":
		bad("kafka.tls.cert", "a client key (kafka.tls.key) needs its certificate")
	case t.Cert != "":
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			bad("kafka.tls.cert", "cannot load the client certificate and key: %v", err)
		}
	}
}

func (s KafkaSASL) validate(bad complaint, tlsOn bool) {
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			bad("kafka.sasl.mechanism", "credentials are set but no mechanism: want %s, %s or %s", SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
		return
	case SASLPlain:
		if !tlsOn {
			bad("kafka.sasl.mechanism", "PLAIN sends the password as it is: turn kafka.tls on, or use SCRAM")
		}
	case SASLScramSHA256, SASLScramSHA512:
	default:
		bad("kafka.sasl.mechanism", "want %s, %s or %s; got %q", SASLPlain, SASLScramSHA256, SASLScramSHA512, s.Mechanism)
	}
	if s.Username == "" {
		bad("kafka.sasl.username", "required with a mechanism")
	}
	if s.Password == "" {
		bad("kafka.sasl.password", "required with a mechanism")
	}
}
