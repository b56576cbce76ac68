package kafkatest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DeletePrefixed deletes the topics and the consumer groups whose names start with prefix
// from the cluster of seeds (Prefix does it for each test at cleanup).
// A group that still has members (a child process killed a moment ago, whose session has not
// expired) cannot be deleted and is left; so is anything the broker does not answer about
// within 10 s.
func DeletePrefixed(seeds []string, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	var topics []string
	for _, name := range listed.Names() {
		if strings.HasPrefix(name, prefix) {
			topics = append(topics, name)
		}
	}
	var errs []error
	if len(topics) > 0 {
		if _, err := adm.DeleteTopics(ctx, topics...); err != nil {
			errs = append(errs, err)
		}
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var ours []string
	for _, g := range groups.Groups() {
		if strings.HasPrefix(g, prefix) {
			ours = append(ours, g)
		}
	}
	if len(ours) > 0 {
		_, _ = adm.DeleteGroups(ctx, ours...) // a group with members is kept; see above
	}
	return errors.Join(errs...)
}
