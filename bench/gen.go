package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/socialbridge/bridge/event"
)

// delivery is one pre-generated, signed CodivUpload webhook: what the load generator sends.
// A duplicate is the same bytes as an earlier delivery, as a provider's redelivery is.
type delivery struct {
	id, typ   string
	body      []byte
	signature string // hex HMAC-SHA256 of body
	wire      []byte // the whole HTTP/1.1 request; body is its tail
	dup       bool   // a redelivery of an id generated earlier in the same batch
}

// genSpec describes a batch of deliveries.
type genSpec struct {
	runID    string  // unique to the run, so ids never collide with another run's
	phase    string  // unique to the batch within the run
	count    int     // deliveries in the batch, duplicates included
	dupShare float64 // share of deliveries that resend an earlier id
	dupLag   int     // a duplicate resends an id at least this many positions back
	secret   []byte
	seed     uint64
}

// typeMix is the share of each event type, roughly what a scheduling API sends.
var typeMix = []struct {
	typ    string
	weight int
}{
	{event.PostPublished, 70},
	{event.PostFailed, 15},
	{event.PostRetry, 10},
	{event.PostTokenExpired, 5},
}

var (
	platforms = []string{"instagram", "tiktok", "linkedin", "facebook", "x", "youtube", "threads", "pinterest"}
	profiles  = []string{"main", "brand_eu", "brand_us", "support", "careers", "acme-outdoor", "acme-kids"}
	errCodes  = []string{"rate_limited", "media_rejected", "caption_too_long", "upstream_timeout", "duplicate_post"}
	words     = strings.Fields(`the platform rejected the request because the media container was not ready yet
		please retry after the processing window upload session expired video duration exceeds the limit for
		this account type aspect ratio unsupported by the destination the access token was revoked by the user
		or expired after a password change reconnect the profile to resume publishing`)
)

// generate makes the batch: signed bodies of 400 to 800 bytes, a mix of event types, unique
// ids, and spec.dupShare of them resending an id from at least spec.dupLag positions back.
func generate(spec genSpec) []delivery {
	r := rand.New(rand.NewPCG(spec.seed, uint64(len(spec.phase))))
	out := make([]delivery, spec.count)
	base := time.Now().UTC().Truncate(time.Second)
	unique := 0
	for i := range out {
		if i >= spec.dupLag && spec.dupShare > 0 && r.Float64() < spec.dupShare {
			d := out[r.IntN(i-spec.dupLag+1)]
			d.dup = true
			out[i] = d
			continue
		}
		id := "evt_" + spec.runID + "_" + spec.phase + "_" + strconv.Itoa(unique)
		unique++
		typ := pickType(r)
		body := makeBody(r, id, typ, base, 400+r.IntN(401))
		out[i] = request(id, typ, body, sign(spec.secret, body))
	}
	return out
}

// webhookPath is where the load generator sends: the benchmarked source's endpoint.
const webhookPath = "/webhooks/" + sourceName

func request(id, typ string, body []byte, signature string) delivery {
	w := wire(webhookPath, [][2]string{
		{"Content-Type", "application/json"},
		{"X-CodivUpload-Event", typ},
		{"X-CodivUpload-Signature", signature},
	}, body)
	return delivery{id: id, typ: typ, body: w[len(w)-len(body):], signature: signature, wire: w}
}

func pickType(r *rand.Rand) string {
	n := r.IntN(100)
	for _, m := range typeMix {
		if n < m.weight {
			return m.typ
		}
		n -= m.weight
	}
	return event.PostPublished
}

func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// makeBody writes a CodivUpload body of the given type and about size bytes: the fields a
// real delivery of that type carries, with its free-text field (an error message, a post URL
// with tracking parameters, a reconnect URL) as long as it takes to reach size.
func makeBody(r *rand.Rand, id, typ string, base time.Time, size int) []byte {
	ts := func(d time.Duration) string { return base.Add(d).Format(time.RFC3339) }
	platform, profile := platforms[r.IntN(len(platforms))], profiles[r.IntN(len(profiles))]
	postID := fmt.Sprintf("post_%08x", r.Uint32())
	head := fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":%q,"data":{"post_id":%q,"profile_name":%q,"platform":%q,"scheduled_at":%q`,
		typ, id, ts(0), postID, profile, platform, ts(-42*time.Second))
	var fields, padField, padPrefix string
	switch typ {
	case event.PostPublished:
		ppid := strconv.FormatUint(r.Uint64()>>8, 10)
		fields = fmt.Sprintf(`,"platform_post_id":%q,"published_at":%q`, ppid, ts(0))
		padField, padPrefix = "platform_post_url", "https://www."+platform+".com/p/"+ppid+"/?utm_source=codivupload&utm_medium=social&utm_campaign="
	case event.PostFailed:
		fields = fmt.Sprintf(`,"error_code":%q,"retryable":%t,"attempt":%d`, errCodes[r.IntN(len(errCodes))], r.IntN(2) == 0, 1+r.IntN(3))
		padField, padPrefix = "error_message", platform+": "
	case event.PostRetry:
		fields = fmt.Sprintf(`,"attempt":%d,"next_attempt_at":%q,"error_code":"upstream_timeout"`, 2+r.IntN(3), ts(5*time.Minute))
		padField, padPrefix = "error_message", "retrying after: "
	default: // post.token_expired
		fields = `,"error_code":"token_expired"`
		padField, padPrefix = "reconnect_url", "https://app.codivupload.com/profiles/"+profile+"/reconnect/"+platform+"?state="
	}
	fixed := len(head) + len(fields) + len(`,"":""}}`) + len(padField) + len(padPrefix)
	pad := padPrefix + filler(r, padField, size-fixed)
	return fmt.Appendf(nil, `%s%s,%q:%q}}`, head, fields, padField, pad)
}

// filler returns n bytes (at least 1) of text fitting field: words for a message, a
// URL-safe token for a URL parameter.
func filler(r *rand.Rand, field string, n int) string {
	n = max(n, 1)
	var b strings.Builder
	if field == "error_message" {
		for b.Len() < n {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.IntN(len(words))])
		}
		return b.String()[:n]
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	for range n {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}
