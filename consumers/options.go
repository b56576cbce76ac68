package consumers

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

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
func TransactOptions(group string, m config.Member) []kgo.Opt {
	var static []kgo.Opt
	if m.InstanceID != "" {
		static = append(static, kgo.InstanceID(m.InstanceID))
	}
	return append(static,
		kgo.TransactionalID(TransactionalID(group, m.InstanceID)),
		kgo.TransactionTimeout(m.TransactionTimeout.D()),
		kgo.BlockRebalanceOnPoll(),
		kgo.RebalanceTimeout(m.TransactionTimeout.D()+30*time.Second),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.MaxVersions(offsetsAddedFirst()),
	)
}

// offsetsAddedFirst are the request versions a transactional member uses: the newest, but
// TxnOffsetCommit below v5, so that a transaction adds the group with AddOffsetsToTxn before
// committing offsets, as before KIP-890. With v5, the broker checks the transaction inside
// TxnOffsetCommit and answers CONCURRENT_TRANSACTIONS while the previous transaction's
// markers are still being written; franz-go retries that answer to AddOffsetsToTxn but
// aborts on it from TxnOffsetCommit. A batch that moved nothing and followed a commit
// closely (a keyed batch of alerts, a batch of retries whose calls all succeeded) was then
// aborted and handled again in about one run of the benchmark in two; never with v4. The
// price is one request per transaction.
func offsetsAddedFirst() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 4)
	return v
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
