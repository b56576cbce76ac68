#!/usr/bin/env bash
# The project's test command: a real single-node Kafka on 127.0.0.1, then
# go vet and go test -race against it; the broker is stopped on exit.
#
#   scripts/test.sh                         vet + test ./...
#   scripts/test.sh -run TestX -v           extra flags go to go test
#   scripts/test.sh -v ./internal/kafkatest/  packages given replace ./...
#
# Tests find the broker through BRIDGE_TEST_KAFKA; tests that need a broker of
# their own (to stop and restart it) start one from KAFKA_LIBS with KAFKA_JAVA
# (see internal/kafkatest).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export KAFKA_CACHE=${KAFKA_CACHE:-$REPO/.cache/kafka}
export KAFKA_PORT=${KAFKA_PORT:-39092}

command -v go >/dev/null 2>&1 || { echo "test.sh: go not found on PATH" >&2; exit 1; }

# The brokers of the tests listen on ports 39000-39999, inside Linux's range of ephemeral
# ports: a client's outgoing connection could take one just before a broker (re)binds it
# ("Address already in use", seen once here). As root, keep the kernel from handing them out.
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
if [[ $(id -u) == 0 && -w $reserved ]] && ! grep -q '39000-39999' "$reserved"; then
	cur=$(cat "$reserved")
	echo "39000-39999${cur:+,$cur}" >"$reserved" 2>/dev/null || true
fi

scripts/kafka.sh fetch

started=
services_started=
trap 'SERVICES="$services_started" scripts/services.sh stop; [[ -z "$started" ]] || scripts/kafka.sh stop || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if scripts/kafka.sh status >/dev/null 2>&1; then
	echo "test.sh: reusing the Kafka already running at 127.0.0.1:$KAFKA_PORT (scripts/kafka.sh stop to stop it)" >&2
else
	started=1
	scripts/kafka.sh start >/dev/null
fi

# PostgreSQL, Redis, the Docker engine and Chromium, installed when missing; those this run
# starts are stopped on exit, those already running are left alone.
scripts/services.sh install
services_started=$(scripts/services.sh start)
while IFS= read -r kv; do export "${kv?}"; done < <(scripts/services.sh env)

export BRIDGE_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
# testcontainers-go (package bridgetest): no Ryuk reaper, whose image would be pulled from a
# registry (tests terminate their containers), and every address it hands out on loopback.
export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
export KAFKA_LIBS="$KAFKA_CACHE/libs"
export KAFKA_JAVA=${KAFKA_JAVA:-$(command -v java)}
echo "test.sh: BRIDGE_TEST_KAFKA=$BRIDGE_TEST_KAFKA KAFKA_LIBS=$KAFKA_LIBS${started:+ (started for this run)}" >&2
env | grep '^BRIDGE_TEST_' | sed 's/^/test.sh: /' >&2

# Arguments that name packages replace ./...; all others are go test flags
# (give flag values with '=', e.g. -coverprofile=./c.out).
pkgs=()
flags=()
for a in "$@"; do
	case "$a" in
	./* | ../* | . | github.com/socialbridge/bridge*) pkgs+=("$a") ;;
	*) flags+=("$a") ;;
	esac
done
((${#pkgs[@]})) || pkgs=(./...)

rc=0
echo "test.sh: go vet ${pkgs[*]}" >&2
go vet "${pkgs[@]}" || rc=$?
if ((rc == 0)); then
	echo "test.sh: go test -race -shuffle=on -count=1 -timeout 15m ${flags[*]} ${pkgs[*]}" >&2
	go test -race -shuffle=on -count=1 -timeout 15m "${flags[@]}" "${pkgs[@]}" || rc=$?
fi
exit "$rc"
