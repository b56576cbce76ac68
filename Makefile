# Common developer and CI entry points. `make test` is what CI runs.
SHELL := bash
GO ?= go
ARGS ?=

.PHONY: test fuzz mutate mutate-short vet lint build image compose-check run fmt-check tidy-check bench bench-consumers bench-analytics bench-txn model churn-alerts chaos-consumers faults slow-bodies rebuild-bench spool-bench spool-storage-bench kafka-fetch kafka-start kafka-stop kafka-status

# go vet + go test -race against a real Kafka started for the run;
# e.g. make test ARGS='-run TestX -v ./internal/kafkatest/'. Without ARGS it then runs the
# model tests again without the race detector, which slows them tenfold: thousands of
# sequences in seconds (see docs/testing.md).
test:
	scripts/test.sh $(ARGS)
ifeq ($(strip $(ARGS)),)
	$(GO) test -count=1 -run '^TestModel$$' ./consumers/analytics/
endif

# The consumers' model-based tests (rapid state machines, no broker) for CHECKS sequences
# each (seeded; a failure prints how to replay it; see docs/testing.md); e.g.
# make model CHECKS=100000
CHECKS ?= 20000
model:
	$(GO) test -count=1 -timeout 0 -run '^TestModel$$' -rapid.checks=$(CHECKS) ./consumers/...

# Every fuzz target (presets' Verify and Normalize, the JSON reader, raw HTTP requests into
# the ingress) for FUZZTIME each; CI runs it with FUZZTIME=5s. e.g. make fuzz FUZZTIME=10m
FUZZTIME ?= 1m
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(ARGS)

# Mutation testing (gremlins) of the core packages: each package's table row and its
# surviving mutants in .cache/mutate/report.md (docs/testing.md, "Mutation testing"). Long
# (an hour or more); e.g. make mutate ARGS='schemas config' WORKERS=1
mutate:
	scripts/mutate.sh $(ARGS)

# The short form CI runs: only the mutants on lines changed since the merge base with
# MUTATE_BASE (none on MUTATE_BASE itself), in the packages whose tests need no service.
MUTATE_BASE ?= main
mutate-short:
	DIFF=$(MUTATE_BASE) scripts/mutate.sh $(or $(ARGS),bridge/providers schemas config)

vet:
	$(GO) vet ./...

# golangci-lint with .golangci.yml (the linters chosen and why), at the pinned version,
# installed into $(go env GOPATH)/bin through the Go module proxy when missing or another
# version. Run it before each commit; .ci/run runs it before the tests.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(shell $(GO) env GOPATH)/bin/golangci-lint
lint:
	@if ! $(GOLANGCI_LINT) version 2>/dev/null | grep -q 'version $(patsubst v%,%,$(GOLANGCI_LINT_VERSION)) '; then \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION)"; \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); \
	fi
	$(GOLANGCI_LINT) run ./...

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE ?= socialbridge/bridge:latest

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.buildVersion=$(VERSION)" -o bin/bridge ./cmd/bridge

# The container image, FROM scratch, built from the working tree (no registry needed):
# e.g. make image IMAGE=socialbridge/bridge:1.2.0
image:
	VERSION=$(VERSION) scripts/image.sh $(IMAGE)

# Validates docker-compose.yml (and its profiles) with docker-compose, as CI does.
compose-check:
	docker-compose -f docker-compose.yml config -q
	docker-compose -f docker-compose.yml --profile registry config -q

run:
	$(GO) run ./cmd/bridge dev

fmt-check:
	@out=$$(gofmt -l .); \
	if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

tidy-check:
	$(GO) mod tidy -diff

# Runs scripts/bench.sh if present, else `go run ./bench` against a broker
# started for the run.
bench:
	@if [[ -x scripts/bench.sh ]]; then exec scripts/bench.sh $(ARGS); fi; \
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	BRIDGE_TEST_KAFKA=127.0.0.1:$${KAFKA_PORT:-39092} $(GO) run ./bench $(ARGS)

# Throughput of the retries and alerts groups against a bare franz-go consumer, in one run
# on a broker started for it, COUNT rounds (default 5; see bench/RESULTS.md, "Reference
# consumers", which reports their medians).
bench-consumers:
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	BRIDGE_TEST_KAFKA=127.0.0.1:$${KAFKA_PORT:-39092} $(GO) test -run '^$$' -bench Consumers -benchtime 1x -count $${COUNT:-5} ./consumers/

# TxnOffsetCommit v5 (KIP-890 part 2, what the groups use) against a cap at v4: aborts per
# 1,000 batches and throughput, on a broker started for it (see docs/consumers.md).
bench-txn:
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	BRIDGE_TEST_KAFKA=127.0.0.1:$${KAFKA_PORT:-39092} $(GO) test -run '^$$' -bench TxnOffsetCommit -benchtime 1x -count $${COUNT:-3} -timeout 60m ./consumers/

# The analytics consumer's benchmark: events/s into SQLite and PostgreSQL against a bare
# franz-go consumer, and the summary's latency over a month; updates bench/RESULTS.md.
bench-analytics:
	scripts/bench-analytics.sh $(ARGS)

# The local spool's figures (docs/spool.md): appends/s with fsync (group commit), its drain
# rate, the time to drain RECORDS records (1,000,000 by default) into a broker started for it,
# and the request path's cost with the spool idle against no spool (same-run ratio); writes
# its section of bench/RESULTS.md. e.g. make spool-bench RECORDS=100000
RECORDS ?= 1000000
spool-bench:
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	$(GO) run ./bench/spool -brokers 127.0.0.1:$${KAFKA_PORT:-39092} -records $(RECORDS) -results bench/RESULTS.md $(ARGS)

# The candidates for the spool's storage (bench/spoolstore, a module of its own so that those
# not chosen stay out of go.mod): bridge/spool's segments, tidwall/wal, bbolt and SQLite,
# appends/s with fsync and drain rate on one disk in one run; writes bench/RESULTS.md.
spool-storage-bench:
	cd bench/spoolstore && $(GO) run . -results ../RESULTS.md $(ARGS)

kafka-fetch:
	scripts/kafka.sh fetch

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

kafka-status:
	scripts/kafka.sh status

# The consumers' chaos run, long form: the retries, alerts and analytics groups, two
# `bridge consume` processes each, under SIGKILLs, members leaving and joining, extra
# members, the broker restarted, killed and paused, PostgreSQL restarted, the retry action
# and Slack failing and slow: every kind of fault once, one at a time (about 12 minutes),
# then CHAOS_DURATION of overlapping faults, CHAOS_RECORDS records in all (CHAOS_SEED
# replays the input and the schedule, 0 draws one), on a broker and a PostgreSQL of the
# test's own; every record is accounted for and the figures go to bench/RESULTS.md
# ("Consumers under chaos"). The names are prefixed: spool-bench has its own RECORDS.
# make test runs its short form (12 s of input, a few faults). See docs/testing.md.
CHAOS_DURATION ?= 5m
CHAOS_RECORDS ?= 30000
CHAOS_SEED ?= 0
chaos-consumers:
	scripts/kafka.sh fetch
	KAFKA_LIBS=$${KAFKA_CACHE:-$(CURDIR)/.cache/kafka}/libs $(GO) test -count=1 -run '^TestChaos$$' -v -timeout 120m ./consumers/chaos/ \
		-args -chaos.long -chaos.duration=$(CHAOS_DURATION) -chaos.records=$(CHAOS_RECORDS) -chaos.seed=$(CHAOS_SEED) -chaos.report=$(CURDIR)/bench/RESULTS.md

# The fault suite's long form (a few minutes of steady load per fault against two replicas
# sharing Redis; CI runs the short form as part of make test). Writes bench/FAULTS.md.
faults:
	scripts/kafka.sh fetch
	KAFKA_LIBS=$${KAFKA_CACHE:-$(CURDIR)/.cache/kafka}/libs $(GO) test -count=1 -run '^TestFaults$$' -v -timeout 30m ./bench/ -args -faults.full

# The bridge's memory under 2,000 slow unauthenticated uploads, for 3 minutes (make test runs
# it for 20 s); see docs/performance.md.
slow-bodies:
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	BRIDGE_TEST_KAFKA=127.0.0.1:$${KAFKA_PORT:-39092} $(GO) test -count=1 -run '^TestMemoryUnderSlowUploads$$' -v -timeout 20m ./bench/ -args -slowbody.full

# The dedup rebuild at 1 M and 10 M records (about 6 GB for the broker; not in CI).
rebuild-bench:
	@scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	$(GO) run ./bench/rebuild -brokers 127.0.0.1:$${KAFKA_PORT:-39092} $(ARGS)

# The alerts group's state under churn: 100,000 profiles that alert, resolve and never come
# back, and the same with forgetting off as the baseline, on a broker started for it: keys
# held, keys live in the state topic, what an assignment's load reads and takes (see
# bench/RESULTS.md, "Alerts state under churn"). make test runs its short form (1,200).
churn-alerts:
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	BRIDGE_TEST_KAFKA=127.0.0.1:$${KAFKA_PORT:-39092} BRIDGE_ALERTS_CHURN=$${PROFILES:-100000} \
	$(GO) test -run '^TestStateStaysBoundedUnderChurn$$' -v -timeout 90m ./consumers/alerts/
