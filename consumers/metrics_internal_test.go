package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/socialbridge/bridge/internal/testkit"
)

// TestSetLagExportsOwnedPartitionsOnly: a member exports the lag of the partitions it
// owns, keeps the last value of one it owns but could not measure, and deletes the series
// of those it no longer owns.
func TestSetLagExportsOwnedPartitionsOnly(t *testing.T) {
	reg := NewRegistry()
	m := NewMetrics(reg, "g")
	mine, theirs := &kadm.DescribedGroupMember{MemberID: "m1"}, &kadm.DescribedGroupMember{MemberID: "m2"}
	lag := kadm.GroupLag{"t": {
		0: {Member: mine, Topic: "t", Partition: 0, Lag: 5},
		1: {Member: theirs, Topic: "t", Partition: 1, Lag: 7},
		2: {Member: mine, Topic: "t", Partition: 2, Lag: 9},
		3: {Member: theirs, Topic: "t", Partition: 3, Lag: 1},
	}}
	exported := m.setLag(lag, "m1", nil)
	if got := lagSeriesOf(t, reg); !slices.Equal(got, []string{"t/0=5", "t/2=9"}) {
		t.Fatalf("first measure: %v, want t/0=5 t/2=9", got)
	}
	// Partition 0 moved to m2, 2 could not be measured, 3 came to m1.
	lag = kadm.GroupLag{"t": {
		0: {Member: theirs, Topic: "t", Partition: 0, Lag: 4},
		2: {Member: mine, Topic: "t", Partition: 2, Lag: -1, Err: errors.New("no end offset")},
		3: {Member: mine, Topic: "t", Partition: 3, Lag: 2},
	}}
	exported = m.setLag(lag, "m1", exported)
	if got := lagSeriesOf(t, reg); !slices.Equal(got, []string{"t/2=9", "t/3=2"}) {
		t.Errorf("second measure: %v, want t/2=9 (kept) t/3=2", got)
	}
	m.setLag(kadm.GroupLag{}, "m1", exported) // the group is empty now: nothing is owned
	if got := lagSeriesOf(t, reg); len(got) != 0 {
		t.Errorf("after losing every partition: %v, want none", got)
	}
}

// lagSeriesOf lists the series of bridge_consumer_lag in reg as topic/partition=value.
func lagSeriesOf(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if f.GetName() != "bridge_consumer_lag" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out = append(out, fmt.Sprintf("%s/%s=%g", l["topic"], l["partition"], m.GetGauge().GetValue()))
		}
	}
	sort.Strings(out)
	return out
}

// TestMemberLagWatched: WatchLag exports the lag of the partitions the member owns every
// interval, and keeps the last values while the lag cannot be measured: when kadm's Lag
// fails (here the group's description is refused as unauthorised), and when it reports the
// group's description failed beside no error (here GROUP_ID_NOT_FOUND).
func TestMemberLagWatched(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var refuse atomic.Int32 // the error code DescribeGroups answers, 0: none
	c.ControlKey(int16(kmsg.DescribeGroups), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		code := int16(refuse.Load())
		if code == 0 {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range req.(*kmsg.DescribeGroupsRequest).Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, v := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fs := cl.PollFetches(ctx) // joins the group
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if err := cl.CommitRecords(ctx, fs.Records()[0]); err != nil {
		t.Fatal(err)
	}

	reg := NewRegistry()
	m := NewMetrics(reg, "g")
	var logs testkit.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		m.WatchLag(ctx, cl, "g", 10*time.Millisecond, log)
	}()
	defer func() { cancel(); <-watched }()
	series := func() string { return strings.Join(lagSeriesOf(t, reg), " ") }
	testkit.Eventually(t, 30*time.Second, "the lag of t/0 exported", func() bool { return series() == "t/0=2" }, series)
	for _, refused := range []*kerr.Error{kerr.GroupAuthorizationFailed, kerr.GroupIDNotFound} {
		refuse.Store(int32(refused.Code))
		testkit.Eventually(t, 30*time.Second, "a measure failed with "+refused.Message, func() bool {
			return strings.Contains(logs.String(), `msg="lag not measured" err="`+refused.Message)
		}, logs.String)
		if got := series(); got != "t/0=2" {
			t.Errorf("after a measure failed with %s: %q, want the last value kept, t/0=2", refused.Message, got)
		}
	}
}
