package consumers

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
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
