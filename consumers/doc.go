// Package consumers is the runtime shared by the reference consumer groups (`bridge consume
// retries|alerts|…`): decoding record values into the canonical event through schemas/,
// the franz-go options of a group member, the topics a group needs, a transactional poll
// loop in which an effect's records and the source offsets commit together, partitions held
// paused until a record is due, dead-lettering, Prometheus metrics and /healthz.
//
// The groups themselves live in the subpackages (consumers/retries, consumers/alerts).
// A consumer that keeps its offsets in its own database uses the pieces that fit (NewReader,
// MemberOptions, Metrics, Serve) and not the transactional Loop.
package consumers
