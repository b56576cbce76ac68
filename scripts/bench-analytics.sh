#!/usr/bin/env bash
# The analytics consumer's benchmark (`make bench-analytics`, a few minutes): the test
# command's Kafka and PostgreSQL (each started here unless running, and stopped again), then
# `go run ./bench/analytics`, which replaces its section of bench/RESULTS.md.
#
#   scripts/bench-analytics.sh                   defaults (see go run ./bench/analytics -h)
#   scripts/bench-analytics.sh -events 500000    extra flags go to the bench
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export KAFKA_CACHE=${KAFKA_CACHE:-$REPO/.cache/kafka}
export KAFKA_PORT=${KAFKA_PORT:-39092}

started=
services_started=
trap 'SERVICES="$services_started" scripts/services.sh stop; [[ -z "$started" ]] || scripts/kafka.sh stop || true' EXIT
if ! scripts/kafka.sh status >/dev/null 2>&1; then
	started=1
	scripts/kafka.sh start >/dev/null
fi
SERVICES=postgres scripts/services.sh install
services_started=$(SERVICES=postgres scripts/services.sh start)
while IFS= read -r kv; do export "${kv?}"; done < <(SERVICES=postgres scripts/services.sh env)

go run ./bench/analytics -brokers "127.0.0.1:$KAFKA_PORT" "$@"
