package providers

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/event"
)

// UploadPost is the preset of Upload-Post's webhooks (docs/providers.md, "Upload-Post").
// Upload-Post signs nothing, so a delivery is authenticated by the token that ends its URL
// (see Unsigned): configure https://…/webhooks/{source}/{token} at Upload-Post, with the
// token as the source's secret. The body is one event, {"event", "job_id", "platform",
// "result", "created_at", …}; there is no event id, so one is derived from the job and
// platform, or for account events from the account and the event's time.
//
// Retry policy of the sender: not documented.
type UploadPost struct{}

var upToken = urlToken{"upload-post"}

// Key accepts a URL token: at least 16 characters of the URL alphabet.
func (UploadPost) Key(secret string) (*Key, error) { return upToken.Key(secret) }

// VerifyToken checks the URL's token against the source's secrets in constant time.
func (UploadPost) VerifyToken(token []byte, keys []*Key) error {
	return upToken.VerifyToken(token, keys)
}

type upDelivery struct {
	Event           string `json:"event"`
	JobID           string `json:"job_id"`
	ProfileUsername string `json:"profile_username"`
	Platform        string `json:"platform"`
	CreatedAt       string `json:"created_at"`
	Result          struct {
		Success   *bool          `json:"success"`
		URL       string         `json:"url"`
		PublishID jsontext.Value `json:"publish_id"`
		PostID    jsontext.Value `json:"post_id"`
		Error     jsontext.Value `json:"error"`
	} `json:"result"`
}

// Normalize maps a delivery that carries an event; Split also says why one carries none.
func (p UploadPost) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(p, h, body, ev)
}

// Split maps upload_completed, by result.success, to post.published or post.failed, and
// social_account_reauth_required and social_account_disconnected to post.token_expired.
// social_account_connected is ignored; an unknown event is refused.
func (UploadPost) Split(_ Headers, body []byte) ([]Part, error) {
	var d upDelivery
	if err := unmarshalBody(body, &d); err != nil {
		return nil, err
	}
	at := upTime(d.CreatedAt)
	ev := event.Event{OccurredAt: at, ProfileName: ptr(d.ProfileUsername), Platform: ptr(d.Platform)}
	switch d.Event {
	case "upload_completed":
		if d.Result.Success == nil {
			return nil, unnormalizable("field \"result.success\": want a boolean, got none")
		}
		upUpload(&d, &ev)
	case "social_account_reauth_required", "social_account_disconnected":
		ev.Type = event.PostTokenExpired
		ev.ID = derivedID("upload-post", d.Event, d.ProfileUsername, d.Platform, d.CreatedAt)
	case "social_account_connected":
		return []Part{{Ignored: "upload-post event \"social_account_connected\" is not mapped"}}, nil
	case "":
		return nil, unnormalizable("missing event type")
	default:
		return nil, unnormalizable("unknown upload-post event %s", quote(d.Event))
	}
	return []Part{{Event: ev}}, nil
}

func upUpload(d *upDelivery, ev *event.Event) {
	if d.JobID != "" {
		ev.ID = derivedID("upload-post", "upload", d.JobID, d.Platform)
	} else { // the older webhooks had no job_id
		ev.ID = derivedID("upload-post", "upload", d.ProfileUsername, d.Platform, d.CreatedAt)
	}
	ev.PostID = ptr(d.JobID)
	if !*d.Result.Success {
		ev.Type, ev.ErrorMessage = event.PostFailed, ptr(errorText(d.Result.Error))
		return
	}
	ev.Type, ev.PlatformPostURL, ev.PublishedAt = event.PostPublished, ptr(d.Result.URL), timePtr(ev.OccurredAt)
	ev.PlatformPostID = ptr(firstText(d.Result.PostID, d.Result.PublishID))
}

// errorText is an error sent as a string, or as any other JSON value, in words.
func errorText(v jsontext.Value) string {
	if !present(v) {
		return ""
	}
	if s := scalarText(v); s != "" {
		return s
	}
	return string(v)
}

// upTime reads Upload-Post's created_at: Python's isoformat, with microseconds and no zone
// (read as UTC), or RFC 3339.
func upTime(s string) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	t, _ := time.Parse("2006-01-02T15:04:05.999999999", s)
	return t
}

// Types lists what Upload-Post's mapped events carry.
func (UploadPost) Types() []string {
	return []string{event.PostPublished, event.PostFailed, event.PostTokenExpired}
}

// Deliver renders ev as Upload-Post does, POSTed to the URL that ends with secret. ev.ID
// becomes the job id of an upload, and the microseconds of an account event's created_at
// (which is all that tells such events apart).
func (p UploadPost) Deliver(ev *event.Event, secret string, _ time.Time) (Delivery, error) {
	if _, err := p.Key(secret); err != nil {
		return Delivery{}, err
	}
	at := ev.OccurredAt.UTC()
	body := map[string]any{"user_email": "user@example.com", "profile_username": deref(ev.ProfileName), "platform": deref(ev.Platform)}
	switch ev.Type {
	case event.PostPublished, event.PostFailed:
		body["event"], body["job_id"], body["media_type"], body["title"] = "upload_completed", ev.ID, "video", "Simulated upload"
		body["result"] = map[string]any{"success": true, "url": deref(ev.PlatformPostURL), "publish_id": deref(ev.PlatformPostID), "post_id": deref(ev.PlatformPostID), "error": nil}
		if ev.Type == event.PostFailed {
			body["result"] = map[string]any{"success": false, "url": nil, "publish_id": nil, "post_id": nil, "error": deref(ev.ErrorMessage)}
		}
	case event.PostTokenExpired:
		body["event"] = "social_account_reauth_required"
		at = at.Add(time.Duration(simMicros(ev.ID)) * time.Microsecond)
	default:
		return Delivery{}, fmt.Errorf("upload-post: sends no %s", ev.Type)
	}
	body["created_at"] = at.Format("2006-01-02T15:04:05.000000")
	d, err := jsonDelivery(body)
	if err != nil {
		return Delivery{}, err
	}
	d.Path = "/" + secret
	return d, nil
}

// simMicros picks the microseconds of a simulated time from an event id.
func simMicros(id string) uint32 {
	f := fnv.New32a()
	f.Write([]byte(id))
	return f.Sum32() % 1_000_000
}
