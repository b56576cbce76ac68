// Package retries is the `retries` reference consumer group: it reads failed posts, calls
// the configured retry action for the retryable ones, and moves each record whose retry
// fails through one delay topic per configured delay, then to a dead-letter topic. Every
// move is produced in one Kafka transaction with the offset of the record it moves, so a
// crash neither loses nor doubles one; a record waiting for its delay never holds back
// the other partitions, nor the input topic.
package retries

// The group's topics are the contract's: event.Topic(prefix, event.PostFailed), then
// event.RetryTopic(prefix, n) for each delay, then event.DLQTopic(prefix).

// Headers on every record the group moves (to a retry topic or the dead-letter topic).
const (
	HeaderAttempt         = "retry-attempt"          // retry calls made and failed so far
	HeaderError           = "retry-error"            // why the last one failed, or why it is dead-lettered
	HeaderOriginTopic     = "retry-origin-topic"     // where the record first entered: {prefix}post.failed
	HeaderOriginPartition = "retry-origin-partition" // … its partition
	HeaderOriginOffset    = "retry-origin-offset"    // … and offset
	HeaderDueAt           = "retry-due-at"           // in a retry topic: not handled before this time (RFC 3339)
)
