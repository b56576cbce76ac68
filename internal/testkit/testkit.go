// Package testkit holds what the project's tests share besides Kafka (internal/kafkatest) and
// the services (internal/testenv): waiting for a condition (Eventually), logs a test can read
// or see (LogBuffer, Logger), processes under test (Start, Reexec, BuildBridge), and the
// signatures of the provider presets for hand-made bodies. One of each, so that a fix to one
// reaches every test. Import it only from _test.go files.
package testkit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// CodivHeaders returns the headers of a CodivUpload delivery of body: JSON, the event type,
// and the hex HMAC-SHA256 of body under secret.
func CodivHeaders(secret, eventType string, body []byte) map[string]string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return map[string]string{
		"Content-Type":            "application/json",
		"X-CodivUpload-Event":     eventType,
		"X-CodivUpload-Signature": hex.EncodeToString(mac.Sum(nil)),
	}
}

// StandardHeaders returns the headers of a Standard Webhooks delivery of body with id,
// timestamped at, signed with secret (whsec_ and the base64 of the key).
func StandardHeaders(secret, id string, at time.Time, body []byte) map[string]string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return map[string]string{
		"Content-Type":      "application/json",
		"webhook-id":        id,
		"webhook-timestamp": ts,
		"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	}
}
