package config

import (
	"cmp"
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
	MinInsyncReplicas int      `yaml:"min_insync_replicas"`
	MaxMessageBytes   int      `yaml:"max_message_bytes"`
	RequireDurable    bool     `yaml:"require_durable"`
	Retention         Duration `yaml:"retention"`
	MaxBufferedBytes  int      `yaml:"max_buffered_bytes"`

	TLS  KafkaTLS  `yaml:"tls"`
	SASL KafkaSASL `yaml:"sasl"`

	// messageBytes is the record batch limit in effect, set by Config.Validate from
	// MaxMessageBytes or, when that is 0, from the http section's limits.
	messageBytes int
}

// MessageBytes is the largest record batch the project's clients write and its topics
// accept (franz-go's ProducerBatchMaxBytes, the topics' max.message.bytes):
// kafka.max_message_bytes, or when that is 0 the bound derived from http.max_body_bytes and
// http.max_header_bytes (see RecordBytes). It is known once Config.Validate has run; before,
// it is kafka.max_message_bytes, whose 0 leaves franz-go's and the brokers' defaults.
func (k Kafka) MessageBytes() int { return cmp.Or(k.messageBytes, k.MaxMessageBytes) }

// MinISR is the min.insync.replicas of topics created with replication replicas:
// kafka.min_insync_replicas, or when that is 0, 2 for three replicas or more and 1 below; never
// more than replication (more would refuse every write). 0 (replication -1, the broker's
// default) leaves the broker's default.
func (k Kafka) MinISR(replication int16) int {
	switch {
	case replication < 1:
		return k.MinInsyncReplicas
	case k.MinInsyncReplicas > 0:
		return min(k.MinInsyncReplicas, int(replication))
	case replication >= 3:
		return 2
	}
	return 1
}

// RecordBytes bounds one record batch that carries a record of a delivery within the http
// limits, as Kafka counts it against max.message.bytes and franz-go against
// ProducerBatchMaxBytes (before compression). A delivery of B body bytes and H bytes of
// request line and headers becomes one record, or one per event when it carries several,
// each holding at most:
//
//   - raw_payload: the body, or the part of it that is the event: B;
//   - the key and event_id (the event id, twice) and the typed fields (post_id, text, …),
//     which are copies of parts of the body or of headers. A byte of the body lands in at
//     most three of them (the hmac preset may read the id and a typed field from one member;
//     x puts a screen name in profile_name and in platform_post_url), so 3B; a header's bytes
//     in at most two (an id from a header is the key and event_id), and the headers copied
//     (the id's, traceparent, content-type) are parts of the same H bytes, so 2H;
//   - the rest, under 16 KiB: the record headers of our own (event-type, source, provider,
//     received-at, a quarantine or dead-letter reason, a retry's attempt and error), names
//     and enum values from the configuration, the schema's header (at most 10 bytes), Avro's
//     union tags and length varints (under 16 bytes for each of some 30 fields), the record's
//     varints (under 64 bytes) and the batch's header (61 bytes).
//
// Hence 4B + 2H + 16 KiB: 4,276,224 bytes for the defaults (1 MiB, 32 KiB). A bound is not
// an allocation: records are as large as their bodies; only a limit below this would refuse
// some verified delivery, answered 413 and lost to the sender's retries.
func RecordBytes(h HTTP) int { return 4*h.MaxBodyBytes + 2*h.MaxHeaderBytes + recordSlack }

const (
	recordSlack = 16 << 10
	// maxMessageBytes caps kafka.max_message_bytes (and so http.max_body_bytes): a produce
	// request must stay under the brokers' socket.request.max.bytes and franz-go's
	// BrokerMaxWriteBytes (both 100 MiB), and a fetch of one batch under franz-go's
	// BrokerMaxReadBytes (100 MiB).
	maxMessageBytes = 64 << 20
)

func defaultKafka() Kafka {
	return Kafka{
		ClientID:          "social-webhook-bridge",
		TopicPrefix:       "social.",
		ProduceTimeout:    Duration(5 * time.Second),
		Compression:       "lz4",
		CreateTopics:      true,
		Partitions:        6,
		ReplicationFactor: 3,
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
	c.validateReplication(bad)
	if c.Kafka.Retention < 0 {
		bad("kafka.retention", "must not be negative (0 keeps the broker default)")
	}
	c.Kafka.TLS.validate(bad)
	c.Kafka.SASL.validate(bad, c.Kafka.TLS.On())
}

func (c *Config) validateReplication(bad complaint) {
	k := c.Kafka
	if k.ReplicationFactor == 0 || k.ReplicationFactor < -1 {
		bad("kafka.replication_factor", "must be positive, or -1 for the broker default; got %d", k.ReplicationFactor)
	}
	switch {
	case k.MinInsyncReplicas < 0:
		bad("kafka.min_insync_replicas", "must be positive, or 0 for the default; got %d", k.MinInsyncReplicas)
	case k.ReplicationFactor > 0 && k.MinInsyncReplicas > int(k.ReplicationFactor):
		bad("kafka.min_insync_replicas", "%d is more than kafka.replication_factor (%d): every write would be refused", k.MinInsyncReplicas, k.ReplicationFactor)
	}
	if !k.RequireDurable {
		return
	}
	if k.ReplicationFactor < 2 {
		bad("kafka.require_durable", "needs kafka.replication_factor of 2 or more, got %d", k.ReplicationFactor)
	} else if isr := k.MinISR(k.ReplicationFactor); isr < 2 {
		bad("kafka.require_durable", "needs kafka.min_insync_replicas of 2 or more (a record acknowledged by two brokers), got %d", isr)
	}
}

// validateMessageBytes settles the record batch limit (Kafka.MessageBytes) and checks that
// the producer may buffer two records of that size.
func (c *Config) validateMessageBytes(bad complaint) {
	need := RecordBytes(c.HTTP)
	c.Kafka.messageBytes = cmp.Or(c.Kafka.MaxMessageBytes, need)
	switch {
	case c.Kafka.MaxMessageBytes < 0:
		bad("kafka.max_message_bytes", "must be positive, or 0 to derive it from http.max_body_bytes; got %d", c.Kafka.MaxMessageBytes)
	case c.Kafka.MaxMessageBytes > 0 && c.Kafka.MaxMessageBytes < need:
		bad("kafka.max_message_bytes", "%d is less than a record of a body of http.max_body_bytes may take (%d): such a verified delivery would be refused; leave it 0 to derive it", c.Kafka.MaxMessageBytes, need)
	case c.Kafka.messageBytes > maxMessageBytes && c.Kafka.MaxMessageBytes == 0:
		bad("http.max_body_bytes", "%d is too large: a record of such a body may take %d bytes, more than a Kafka request carries (%d)", c.HTTP.MaxBodyBytes, need, maxMessageBytes)
	case c.Kafka.messageBytes > maxMessageBytes:
		bad("kafka.max_message_bytes", "must be at most %d (a Kafka request's limit), got %d", maxMessageBytes, c.Kafka.MaxMessageBytes)
	}
	if min := 2 * c.Kafka.messageBytes; c.Kafka.MaxBufferedBytes < min {
		bad("kafka.max_buffered_bytes", "must be at least twice the largest record (kafka.max_message_bytes, derived from http.max_body_bytes: %d), got %d", c.Kafka.messageBytes, c.Kafka.MaxBufferedBytes)
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
