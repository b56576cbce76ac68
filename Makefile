# Common developer and CI entry points. `make test` is what CI runs.
SHELL := bash
GO ?= go
ARGS ?=

.PHONY: test vet build run fmt-check tidy-check bench bench-consumers kafka-fetch kafka-start kafka-stop kafka-status

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

# Throughput of the retries and alerts groups against a bare franz-go consumer, in one run
# on a broker started for it (see bench/RESULTS.md, "Reference consumers").
bench-consumers:
	scripts/kafka.sh start >/dev/null; trap 'scripts/kafka.sh stop' EXIT; \
	BRIDGE_TEST_KAFKA=127.0.0.1:$${KAFKA_PORT:-39092} $(GO) test -run '^$$' -bench Consumers -benchtime 1x ./consumers/

kafka-fetch:
	scripts/kafka.sh fetch

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

kafka-status:
	scripts/kafka.sh status
