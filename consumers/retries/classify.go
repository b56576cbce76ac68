package retries

import "strings"

// Whether a failed post is worth retrying, by the provider's error code, when the record
// does not say (its retryable field is null). Codes are compared in lower case. A code in
// neither list is retried: the delays are bounded, and the dead-letter topic ends them.
var (
	retryableCodes = []string{
		"rate_limited", "rate_limit_exceeded", "too_many_requests", "timeout", "timed_out",
		"upload_timeout", "platform_error", "platform_unavailable", "server_error",
		"internal_error", "service_unavailable", "temporarily_unavailable", "network_error",
	}
	permanentCodes = []string{
		"invalid_media", "media_invalid", "media_too_large", "unsupported_media", "invalid_post",
		"content_rejected", "policy_violation", "duplicate_content", "token_expired",
		"token_revoked", "access_revoked", "account_disconnected", "permission_denied",
		"unauthorized",
	}
)

// retryable decides whether a failure is worth retrying: the record's own retryable flag
// when set, else the code tables above.
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
