package dedup_test

import (
	"context"
	"fmt"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
)

func ExampleStore_Reserve() {
	s := dedup.New(24*time.Hour, 1_000_000, dedup.Options{})
	ctx := context.Background()
	now := time.Now()

	dup, done, err := s.Reserve(ctx, "acme", "evt_1", now)
	fmt.Println(dup, err)
	done(true) // Kafka acknowledged the record

	dup, _, err = s.Reserve(ctx, "acme", "evt_1", now.Add(time.Minute))
	fmt.Println(dup, err)
	// Output:
	// false <nil>
	// true <nil>
}

func ExampleEventKey() {
	fmt.Println(dedup.EventKey("", "evt_1", 0, 1))          // deduplicated by event id
	fmt.Println(dedup.EventKey("signed_ab12", "d-1", 0, 1)) // a content-keyed delivery of one event
	fmt.Println(dedup.EventKey("signed_ab12", "d-1", 2, 3)) // its third part, of three
	// Output:
	// evt_1
	// signed_ab12
	// signed_ab12/2
}
