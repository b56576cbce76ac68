package retries_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestInstanceIDTakesThePartitionsBackAtOnce: a process with an instance_id, killed
// (SIGKILL: it never leaves its group) and started again, is the static member it was
// (docs/consumers.md): the group holds one member under that instance id, and the restarted
// process handles a new record before a group without instance_id, killed and restarted
// alongside, handles its own, which must first wait for its dead member's session (45 s) to
// end. Two groups on the same loaded machine are compared, not a clock.
func TestInstanceIDTakesThePartitionsBackAtOnce(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	p := newProvider(t, status(http.StatusOK))
	static, dynamic := kafkatest.Prefix(t), kafkatest.Prefix(t)
	yaml := map[string]string{
		static:  config(brokers, static, p.srv.URL),
		dynamic: strings.Replace(config(brokers, dynamic, p.srv.URL), `    instance_id: "only"`+"\n", "", 1),
	}
	if yaml[dynamic] == yaml[static] || strings.Contains(yaml[dynamic], "instance_id") {
		t.Fatal("the control group still has an instance_id")
	}
	first := map[string]string{static: "evt_static_1", dynamic: "evt_dynamic_1"}
	// The control is killed last, so that its dead member's session has the longer start.
	for _, prefix := range []string{static, dynamic} {
		proc := grouptest.Child(t, yaml[prefix])
		grouptest.Produce(t, brokers, prefix, 0, failed(first[prefix], nil))
		testkit.Eventually(t, 2*time.Minute, "the first process handles "+first[prefix], func() bool { return len(p.of(first[prefix])) > 0 })
		proc.Kill()
	}
	for _, prefix := range []string{static, dynamic} {
		grouptest.Child(t, yaml[prefix])
		grouptest.Produce(t, brokers, prefix, 0, failed(first[prefix]+"_after", nil))
	}
	testkit.Eventually(t, 2*time.Minute, "the restarted static member handles a new record",
		func() bool { return len(p.of(first[static]+"_after")) > 0 })
	if n := len(p.of(first[dynamic] + "_after")); n > 0 {
		t.Fatal("the group without instance_id took its partitions back as soon as the one with it: nothing was gained")
	}
	members := describe(t, brokers, static+"retries")
	if len(members) != 1 || members[0].InstanceID == nil || *members[0].InstanceID != "only" {
		t.Fatalf("the group's members after the restart: %+v; want one, the static member \"only\"", members)
	}
}

func describe(t *testing.T, brokers []string, group string) []kadm.DescribedGroupMember {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := described[group]
	if !ok || g.Err != nil {
		t.Fatalf("describe %s: %+v", group, g)
	}
	return g.Members
}
