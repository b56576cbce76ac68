package consumers

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// MemberOptions returns the options of a member of group reading topics: the connection
// (kafkaconn.Options), cooperative-sticky rebalancing, only committed records of
// transactional producers (read-committed), and, with no committed offset, the start of each
// partition. Callers append how they commit (TransactOptions, or their own).
func MemberOptions(k config.Kafka, group string, topics ...string) []kgo.Opt {
	return append(kafkaconn.Options(k),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
}

// TransactOptions are what a kgo.GroupTransactSession member adds to MemberOptions: its
// transactional id (see TransactionalID), the transaction timeout, rebalances held back
// while a polled batch is processed (so a batch's transaction never spans a rebalance; the
// rebalance timeout leaves room for the longest batch), and records produced with acks from
// all in-sync replicas.
//
// A configured instance_id is also the member's static group instance id (KIP-345): a
// restarted member takes its partitions back at once, without a rebalance; a stopped one
// keeps them, unconsumed, until it returns or its session times out.
//
// Requests go at the newest versions both sides speak. Against a cluster with
// transaction.version 2 (Kafka 4 formats new clusters so) that is KIP-890 part 2: Produce
// and TxnOffsetCommit add their partitions and group to the transaction themselves, and
// every EndTxn bumps the producer epoch, so a late write of one transaction cannot land in
// the next. Its price: the broker answers CONCURRENT_TRANSACTIONS to a TxnOffsetCommit that
// opens a transaction while the previous one's markers are still being written, and
// franz-go aborts on that answer. So a batch that produced nothing (retries whose calls all
// succeeded, a keyed batch of alerts) and ended within milliseconds of the previous commit
// is aborted and handled again, its calls repeated under the same idempotency keys.
// Capping TxnOffsetCommit at v4 avoids those aborts (AddOffsetsToTxn, whose
// CONCURRENT_TRANSACTIONS franz-go waits out, adds the group) but turns part 2 off for the
// whole client (Produce v11 with AddPartitionsToTxn, EndTxn v4, no epoch bump per
// transaction), and the waiting made it slower: see BenchmarkTxnOffsetCommit and
// docs/consumers.md for the figures.
func TransactOptions(group string, m config.Member) []kgo.Opt {
	var static []kgo.Opt
	if m.InstanceID != "" {
		static = append(static, kgo.InstanceID(m.InstanceID))
	}
	return append(static,
		kgo.TransactionalID(TransactionalID(group, m.InstanceID)),
		kgo.TransactionTimeout(m.TransactionTimeout.D()),
		kgo.BlockRebalanceOnPoll(),
		kgo.RebalanceTimeout(RebalanceTimeout(m)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(fetchMaxWait),
	)
}

// RebalanceTimeout is how long a rebalance of the group waits for a member to rejoin: the
// longest batch (the transaction timeout), which it finishes first, and 30 s more. A
// rebalance lasts up to that, or until a member that stopped without leaving the group
// (one with an instance_id, or one that crashed) is dropped at the end of its session.
func RebalanceTimeout(m config.Member) time.Duration {
	return m.TransactionTimeout.D() + 30*time.Second
}

// fetchMaxWait is how long the broker may hold a fetch that has no new data. A partition
// resumed while a fetch is held is fetched only after it returns, so this bounds how late a
// held record can be handled after it is due.
const fetchMaxWait = 500 * time.Millisecond

// TransactionalID is {group}-{instance}: stable across restarts when instance is configured,
// so a restarted member fences its predecessor and its open transaction is aborted at once;
// a random suffix otherwise.
func TransactionalID(group, instance string) string {
	if instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		instance = hex.EncodeToString(b[:])
	}
	return group + "-" + instance
}
