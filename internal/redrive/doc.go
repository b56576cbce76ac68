// Package redrive holds what an operator does with the records the bridge and its retries
// group set aside: list the dead-letter topic and redrive its records to the first retry
// topic (`bridge dlq`), list the quarantine and replay what today's presets can normalize
// (`bridge quarantine`). Each record is moved once, even when two runs overlap or one is
// killed midway: every move is committed in a Kafka transaction together with a mark of
// the record it moved, under a transactional id that each run of the same operation takes
// before it reads the marks (see DLQ.Redrive).
package redrive
