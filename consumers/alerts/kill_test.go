package alerts_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestKilledWhileSendingRepeatsOnceMarked kills the consumer (SIGKILL of a child process)
// after Slack received an alert and before the consumer heard the answer: the outcome is
// unknown to it, so after the restart the alert is sent again, marked as a possible repeat,
// and only once; a later expiry inside the cool-down sends nothing.
func TestKilledWhileSendingRepeatsOnceMarked(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	kill := make(chan chan struct{})
	s := newSlack(t, func(m message, n int) int {
		if n == 1 {
			done := make(chan struct{})
			select {
			case kill <- done:
				<-done
			case <-time.After(time.Minute):
			}
		}
		return http.StatusOK
	})
	yaml := configYAML(brokers, prefix, s.srv.URL)
	proc := grouptest.Child(t, yaml)
	grouptest.Produce(t, brokers, prefix, 0, expired("evt_k1", "killed"))
	select {
	case done := <-kill:
		proc.Kill()
		close(done)
	case <-time.After(90 * time.Second):
		t.Fatal("no alert reached slack")
	}
	grouptest.Child(t, yaml)
	eventually(t, 90*time.Second, "the alert sent again", func() bool { return len(s.posted("killed")) == 2 })
	grouptest.Produce(t, brokers, prefix, 1, expired("evt_k2", "killed"))
	waitDecided(t, brokers, prefix, 2)
	st := state(t, grouptest.Parse(t, yaml))[key("killed")]
	if st.Alert == nil || st.Alert.ID != "evt_k1" || st.Delivery == nil || st.Delivery.Alert != "evt_k1" || st.Delivery.Sending != "" {
		t.Fatalf("state after the second expiry %+v: want evt_k1's alert, delivered, and nothing being sent", st)
	}
	got := s.posted("killed")
	if len(got) != 2 {
		t.Fatalf("%d alerts, want 2: the one whose answer was lost, and its marked repeat", len(got))
	}
	if strings.Contains(got[0].Text, "sent again") || !strings.Contains(got[1].Text, "sent again") {
		t.Errorf("texts %q, %q: want the second marked as sent again", got[0].Text, got[1].Text)
	}
}

// TestKillsNeverLoseAnAlert kills the consumer while alerts for many profiles are being
// decided and sent (each kill once the running child has posted more), restarting it each
// time: every profile gets its alert; a profile gets a second one only when a kill left
// its outcome unknown, and that one is marked.
func TestKillsNeverLoseAnAlert(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, func(message, int) int {
		time.Sleep(20 * time.Millisecond) // a little time in flight, for kills to land in
		return http.StatusOK
	})
	yaml := strings.Replace(configYAML(brokers, prefix, s.srv.URL), "slack_rate: 50", "slack_rate: 10", 1) // seconds of sending, for three kills
	const n = 30
	proc := grouptest.Child(t, yaml)
	for i := range n {
		grouptest.Produce(t, brokers, prefix, int32(i%grouptest.Partitions), expired(fmt.Sprintf("evt_m%02d", i), fmt.Sprintf("many%02d", i)))
	}
	all := func() bool {
		for i := range n {
			if len(s.posted(fmt.Sprintf("many%02d ", i))) == 0 {
				return false
			}
		}
		return true
	}
	kills := 0
	for range 3 {
		before := len(s.tried())
		eventually(t, 90*time.Second, "the child posting", func() bool { return len(s.tried()) >= before+3 || all() })
		if all() {
			break
		}
		proc.Kill()
		kills++
		proc = grouptest.Child(t, yaml)
	}
	eventually(t, 2*time.Minute, "an alert for every profile", all)
	cfg := grouptest.Parse(t, yaml)
	eventually(t, 60*time.Second, "every alert's delivery recorded", func() bool {
		st := state(t, cfg)
		for i := range n {
			d := st[key(fmt.Sprintf("many%02d", i))].Delivery
			if d == nil || d.Alert != fmt.Sprintf("evt_m%02d", i) || d.Sending != "" {
				return false
			}
		}
		return true
	})
	repeats := 0
	for i := range n {
		got := s.posted(fmt.Sprintf("many%02d ", i))
		for j, m := range got[1:] {
			repeats++
			if !strings.Contains(m.Text, "sent again") {
				t.Errorf("many%02d: message %d not marked as sent again: %q", i, j+2, m.Text)
			}
		}
		if len(got) > 2 {
			t.Errorf("many%02d: %d alerts, want at most 2", i, len(got))
		}
	}
	if kills == 0 {
		t.Error("no kill landed while the child was sending")
	}
	t.Logf("%d kills, %d marked repeats among %d profiles", kills, repeats, n)
}
