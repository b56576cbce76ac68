// Package testkit is the former name of consumers/internal/grouptest, kept only for the tests
// not yet moved (consumers/alerts): each name forwards to where it lives now. Do not use it
// in new tests; delete it once nothing imports it.
package testkit

import (
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// Partitions is grouptest.Partitions.
const Partitions = grouptest.Partitions

// Forwarders to the helpers' homes.
var (
	Kafka          = grouptest.Kafka
	Parse          = grouptest.Parse
	Event          = grouptest.Event
	Str            = grouptest.Str
	Produce        = grouptest.Produce
	ProduceRecords = grouptest.ProduceRecords
	Run            = grouptest.Run
	ChildMain      = grouptest.ChildMain
	Child          = grouptest.Child
	Read           = kafkatest.ReadCommitted
	Header         = kafkatest.Header
	Logger         = testkit.Logger
)
