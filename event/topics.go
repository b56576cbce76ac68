package event

import "strconv"

// The topic names below are the contract between the bridge, which writes the event and
// quarantine topics, and every consumer of them (the reference groups in consumers/, and
// the operator commands that read the dead-letter topic). docs/topics.md lists them.

// QuarantineSuffix names the quarantine topic, {prefix}deadletter: authentic deliveries that
// could not be normalized, kept raw with the reason in headers.
const QuarantineSuffix = "deadletter"

// Topic returns the topic of an event type: {prefix}{type}.
func Topic(prefix, eventType string) string { return prefix + eventType }

// Topics lists every topic the bridge writes: one per event type, then the quarantine.
func Topics(prefix string) []string {
	ts := make([]string, 0, len(Types)+1)
	for _, t := range Types {
		ts = append(ts, Topic(prefix, t))
	}
	return append(ts, QuarantineTopic(prefix))
}

// QuarantineTopic is where the bridge keeps deliveries it could not normalize.
func QuarantineTopic(prefix string) string { return prefix + QuarantineSuffix }

// RetryTopic is the n-th delay topic (n from 1) of failed posts: {prefix}post.failed.retry.n.
func RetryTopic(prefix string, n int) string {
	return Topic(prefix, PostFailed) + ".retry." + strconv.Itoa(n)
}

// DLQTopic is where failed posts end when no retry helps: {prefix}post.failed.dlq.
func DLQTopic(prefix string) string { return Topic(prefix, PostFailed) + ".dlq" }
