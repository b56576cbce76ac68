// Package alerts is the `alerts` reference consumer group: it turns token expiries into one
// Slack message per (source, profile, platform) per cool-down, and a "resolved" message when
// the profile publishes again.
//
// The input topics are partitioned by event, not by profile, so the group first re-keys
// every record by (source, profile_name, platform) into {prefix}alerts.keyed (one
// transaction with the input offsets): all records of one key then meet in one partition,
// owned by one member, whatever the number of members. That member keeps the key's state in
// {prefix}alerts.state, a compacted topic with the same partitioning, read whole when the
// partition is assigned and before any of its records is acted on. Decisions (alert, or
// inside the cool-down, or resolved) are written there in the transaction of the records
// that caused them; Slack messages owed by a decision are then posted by a worker per key,
// with backoff, and each accepted message is recorded there too.
package alerts

// The group reads event.Topic(prefix, event.PostTokenExpired) and
// event.Topic(prefix, event.PostPublished) first.

// Keyed is the group's internal topic of input records keyed by (source, profile, platform).
func Keyed(prefix string) string { return prefix + "alerts.keyed" }

// State is the compacted topic of each key's alert and delivery.
func State(prefix string) string { return prefix + "alerts.state" }

// DLQ is where records that cannot be decoded go, with the reason (consumers.DeadLetter).
func DLQ(prefix string) string { return prefix + "alerts.dlq" }
