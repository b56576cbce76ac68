package retries

import "strings"

// permanentCodes are the provider error codes not worth retrying, when the record does not
// say (its retryable field is null); compared in lower case. Any other code is retried
// (rate limits, timeouts, platform errors, and codes never seen): the delays are bounded,
// and the dead-letter topic ends them.
var permanentCodes = []string{
	"invalid_media", "media_invalid", "media_too_large", "unsupported_media", "invalid_post",
	"content_rejected", "policy_violation", "duplicate_content", "token_expired",
	"token_revoked", "access_revoked", "account_disconnected", "permission_denied",
	"unauthorized",
}

// retryable decides whether a failure is worth retrying: the record's own retryable flag
// when set, else permanentCodes.
func retryable(flag *bool, code *string) bool {
	if flag != nil {
		return *flag
	}
	if code == nil {
		return true
	}
	c := strings.ToLower(*code)
	for _, p := range permanentCodes {
		if c == p {
			return false
		}
	}
	return true
}
