package service_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

func TestHTTPS(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	certFile, keyFile, pool := selfSigned(t)
	cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key = certFile, keyFile
	b := start(t, cfg)
	secure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + b.Addr() + "/webhooks/codivupload"

	h, body := codiv("post.published", "evt_https")
	if a := send(t, secure, "POST", url, h, body); a.Code != 200 || a.Status != "accepted" {
		t.Fatalf("over HTTPS: %+v", a)
	}
	// Plain HTTP reaches the listener (it is not refused) and is told to use HTTPS.
	plain, body := codiv("post.published", "evt_plain_http")
	a := send(t, httpClient, "POST", strings.Replace(url, "https", "http", 1), plain, body)
	if a.Code != 400 || !strings.Contains(a.Error, "HTTPS only") {
		t.Fatalf("plain HTTP to the TLS listener was answered %+v; want 400, HTTPS only", a)
	}
	if n := countKey(readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published"), "evt_plain_http"); n != 0 {
		t.Fatalf("a delivery over plain HTTP is in kafka %d times", n)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bridge test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
