# Common developer and CI entry points. `make test` is what CI runs.
SHELL := bash
GO ?= go
ARGS ?=

.PHONY: test vet build run fmt-check tidy-check bench faults rebuild-bench kafka-fetch kafka-start kafka-stop kafka-status

# go vet + go test -race against a real Kafka started for the run;
# e.g. make test ARGS='-run TestX -v ./internal/kafkatest/'
test:
	scripts/test.sh $(ARGS)

vet:
	$(GO) vet ./...

build:
	CGO_ENABLED=0 $(GO) build -o bin/bridge ./cmd/bridge

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

kafka-fetch:
	scripts/kafka.sh fetch

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

kafka-status:
	scripts/kafka.sh status

# The fault suite's long form (a few minutes of steady load per fault against two replicas
# sharing Redis; CI runs the short form as part of make test). Writes bench/FAULTS.md.
faults:
	scripts/kafka.sh fetch
	KAFKA_LIBS=$${KAFKA_CACHE:-$(CURDIR)/.cache/kafka}/libs $(GO) test -count=1 -run '^TestFaults$$' -v -timeout 30m ./bench/ -args -faults.full

# The dedup rebuild at 1 M and 10 M records (about 6 GB for the broker; not in CI).
rebuild-bench:
	@scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	$(GO) run ./bench/rebuild -brokers 127.0.0.1:$${KAFKA_PORT:-39092} $(ARGS)
