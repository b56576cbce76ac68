package kafkatest

import (
	"fmt"
	"slices"
	"strings"
)

// Security is what a dedicated broker offers besides its PLAINTEXT listener (which a test
// keeps for setting up and checking): with a certificate, an SSL and a SASL_SSL listener;
// with users, a SASL_PLAINTEXT one (and SASL on the SASL_SSL one).
type Security struct {
	// CertPEM and KeyPEM are the broker's certificate chain and its PKCS #8 key.
	CertPEM, KeyPEM []byte
	// ClientCAPEM, if set, makes the SSL listener require a client certificate it signed.
	ClientCAPEM []byte
	// Users are SASL users by name, with their passwords: PLAIN users, and SCRAM-SHA-256 and
	// SCRAM-SHA-512 credentials created as the storage is formatted. Names and passwords
	// must not hold quotes, commas or brackets.
	Users map[string]string
}

// The SASL mechanisms a secure broker enables.
var mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// protocols lists the listeners s adds, by security protocol (also their names).
func (s Security) protocols() []string {
	var out []string
	if len(s.CertPEM) > 0 {
		out = append(out, "SSL")
	}
	if len(s.CertPEM) > 0 && len(s.Users) > 0 {
		out = append(out, "SASL_SSL")
	}
	if len(s.Users) > 0 {
		out = append(out, "SASL_PLAINTEXT")
	}
	return out
}

// properties are the server.properties lines that add s's listeners, overriding the
// template's listener lines (the last of a repeated key wins).
func (s Security) properties(port, cport int, ports map[string]int) string {
	protocols := s.protocols()
	if len(protocols) == 0 {
		return ""
	}
	listeners := []string{fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port)}
	protocolMap := []string{"PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"}
	for _, p := range protocols {
		listeners = append(listeners, fmt.Sprintf("%s://127.0.0.1:%d", p, ports[p]))
		protocolMap = append(protocolMap, p+":"+p)
	}
	var b strings.Builder
	line := func(key, value string) { fmt.Fprintf(&b, "%s=%s\n", key, escapeValue(value)) }
	b.WriteString("\n# kafkatest.Security\n")
	line("listeners", strings.Join(listeners, ",")+fmt.Sprintf(",CONTROLLER://127.0.0.1:%d", cport))
	line("advertised.listeners", strings.Join(listeners, ","))
	line("listener.security.protocol.map", strings.Join(protocolMap, ","))
	if len(s.CertPEM) > 0 {
		line("ssl.keystore.type", "PEM")
		line("ssl.keystore.certificate.chain", string(s.CertPEM))
		line("ssl.keystore.key", string(s.KeyPEM))
	}
	if len(s.ClientCAPEM) > 0 {
		line("ssl.truststore.type", "PEM")
		line("ssl.truststore.certificates", string(s.ClientCAPEM))
		line("listener.name.ssl.ssl.client.auth", "required")
	}
	if len(s.Users) > 0 {
		line("sasl.enabled.mechanisms", strings.Join(mechanisms, ","))
		for _, p := range protocols {
			if strings.HasPrefix(p, "SASL_") {
				s.jaas(line, strings.ToLower(p))
			}
		}
	}
	return b.String()
}

// jaas configures the SASL mechanisms of the listener named listener.
func (s Security) jaas(line func(key, value string), listener string) {
	plain := "org.apache.kafka.common.security.plain.PlainLoginModule required"
	for _, user := range s.userNames() {
		plain += fmt.Sprintf(" user_%s=%q", user, s.Users[user])
	}
	line("listener.name."+listener+".plain.sasl.jaas.config", plain+";")
	for _, m := range mechanisms[1:] {
		line("listener.name."+listener+"."+strings.ToLower(m)+".sasl.jaas.config",
			"org.apache.kafka.common.security.scram.ScramLoginModule required;")
	}
}

// scramArgs are the arguments of kafka-storage format that create the SCRAM credentials.
func (s Security) scramArgs() []string {
	var args []string
	for _, user := range s.userNames() {
		for _, m := range mechanisms[1:] {
			args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, user, s.Users[user]))
		}
	}
	return args
}

func (s Security) userNames() []string {
	names := make([]string, 0, len(s.Users))
	for n := range s.Users {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// escapeValue writes a value, PEM text included, on one line of a Java properties file.
func escapeValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(v)
}
