#!/usr/bin/env bash
# The load benchmark (`make bench`): a real single-node Kafka on 127.0.0.1 (the one the test
# command uses, started here unless one is running), the bridge binary, then `go run ./bench`,
# which runs the load phases, verifies the topics, runs the micro-benchmarks of the request
# path and writes bench/RESULTS.md and bench/results.json. Takes a few minutes; run it on an
# otherwise idle machine (the results show the CPU anything else used).
#
#   scripts/bench.sh                      defaults (see go run ./bench -h)
#   scripts/bench.sh -duration 20s        extra flags go to go run ./bench
#   BENCH_BROKERS=127.0.0.1:9092 scripts/bench.sh   use that broker (loopback only)
#   BENCH_MICRO=0 scripts/bench.sh        skip the micro-benchmarks
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export KAFKA_CACHE=${KAFKA_CACHE:-$REPO/.cache/kafka}
export KAFKA_PORT=${KAFKA_PORT:-39092}

command -v go >/dev/null 2>&1 || { echo "bench.sh: go not found on PATH" >&2; exit 1; }

started=
cleanup() { if [[ -n "$started" ]]; then scripts/kafka.sh stop || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

extra=()
if [[ -n "${BENCH_BROKERS:-}" ]]; then
	brokers=$BENCH_BROKERS
else
	scripts/kafka.sh fetch
	if scripts/kafka.sh status >/dev/null 2>&1; then
		echo "bench.sh: reusing the Kafka already running at 127.0.0.1:$KAFKA_PORT" >&2
	else
		started=1
		scripts/kafka.sh start >/dev/null
	fi
	brokers=127.0.0.1:$KAFKA_PORT
	if pid=$(cat "$KAFKA_CACHE/run/kafka.pid" 2>/dev/null) && [[ "$pid" =~ ^[0-9]+$ ]]; then
		extra+=(-broker-pid "$pid")
	fi
	if version=$(sed -n 's/^KAFKA_VERSION=//p' scripts/kafka.sh) && [[ -n "$version" ]]; then
		extra+=(-kafka-version "$version")
	fi
fi

echo "bench.sh: building bin/bridge" >&2
CGO_ENABLED=0 go build -o bin/bridge ./cmd/bridge

if [[ "${BENCH_MICRO:-1}" == 0 ]]; then
	extra+=(-micro=false)
fi

echo "bench.sh: go run ./bench -brokers $brokers ${extra[*]} $*" >&2
go run ./bench -brokers "$brokers" -bridge-bin bin/bridge "${extra[@]}" "$@"
