#!/usr/bin/env bash
# The services the tests use besides Kafka, from Debian's packages, on loopback only:
# PostgreSQL (analytics), Redis (shared dedup), the Docker engine (image and testcontainers
# tests) and Chromium (dashboard tests). Missing packages are installed with apt-get when
# running as root; each service gets a private data dir under $SERVICES_DIR and is stopped
# by `stop`. `env` prints the variables the tests read.
#
#   scripts/services.sh install   apt-get install what is missing (root)
#   scripts/services.sh start     start PostgreSQL, Redis and dockerd unless already running;
#                                 prints the names of those it started
#   SERVICES="…" scripts/services.sh stop   stop those (by default: all of them)
#   scripts/services.sh env       print BRIDGE_TEST_POSTGRES=… lines for the tests
#
# Environment (all optional): SERVICES_DIR (default $REPO/.cache/services), PG_PORT (55432),
# REDIS_PORT (56379), SERVICES (default "postgres redis docker chromium": the ones to use).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_DIR=${SERVICES_DIR:-$REPO/.cache/services}
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
SERVICES=${SERVICES-postgres redis docker chromium}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)

log() { echo "services.sh: $*" >&2; }
die() { log "$*"; exit 1; }
wants() { [[ " $SERVICES " == *" $1 "* ]]; }

cmd_install() {
	local pkgs=()
	wants postgres && [[ -z "$PG_BIN" ]] && pkgs+=(postgresql)
	wants redis && ! command -v redis-server >/dev/null && pkgs+=(redis-server)
	wants docker && ! command -v dockerd >/dev/null && pkgs+=(docker.io)
	wants docker && ! command -v docker-compose >/dev/null && pkgs+=(docker-compose)
	wants chromium && ! command -v chromium >/dev/null && pkgs+=(chromium)
	((${#pkgs[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "missing ${pkgs[*]}: install them (apt-get install ${pkgs[*]}) or run as root"
	log "installing ${pkgs[*]} from Debian's packages..."
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
}

# as_postgres runs a command as the postgres user when root (PostgreSQL refuses root).
as_postgres() {
	if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
	local dir="$SERVICES_DIR/postgres"
	if as_postgres "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then return 0; fi
	started+=(postgres)
	mkdir -p "$SERVICES_DIR"
	[[ $(id -u) == 0 ]] && chown postgres "$SERVICES_DIR"
	if [[ ! -f "$dir/PG_VERSION" ]]; then
		rm -rf "$dir"
		as_postgres "$PG_BIN/initdb" -D "$dir" -U bridge --auth=trust -E UTF8 >/dev/null
	fi
	as_postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
		-o "-h 127.0.0.1 -p $PG_PORT -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null ||
		{ tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
	as_postgres "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U bridge -d postgres -tc "SELECT 1 FROM pg_database WHERE datname='bridge'" | grep -q 1 ||
		as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U bridge bridge
	log "PostgreSQL on 127.0.0.1:$PG_PORT"
}

start_redis() {
	if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
	started+=(redis)
	mkdir -p "$SERVICES_DIR/redis"
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
		--dir "$SERVICES_DIR/redis" --pidfile "$SERVICES_DIR/redis/redis.pid" --logfile "$SERVICES_DIR/redis/redis.log" >/dev/null
	for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
	redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null || die "Redis did not start"
	log "Redis on 127.0.0.1:$REDIS_PORT"
}

start_docker() {
	if docker info >/dev/null 2>&1; then return 0; fi
	started+=(docker)
	[[ $(id -u) == 0 ]] || die "the Docker engine is not running and only root can start it"
	mkdir -p "$SERVICES_DIR/docker"
	nohup dockerd >"$SERVICES_DIR/docker/dockerd.log" 2>&1 &
	echo $! >"$SERVICES_DIR/docker/dockerd.pid"
	for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
	docker info >/dev/null 2>&1 || { tail -n 20 "$SERVICES_DIR/docker/dockerd.log" >&2; die "dockerd did not start"; }
	log "Docker engine started"
}

# cmd_start prints the services it started (not those already running), for stop.
cmd_start() {
	started=()
	if wants postgres; then start_postgres; fi
	if wants redis; then start_redis; fi
	if wants docker; then start_docker; fi
	echo "${started[*]}"
}

cmd_stop() {
	if wants postgres && [[ -f "$SERVICES_DIR/postgres/postmaster.pid" ]]; then
		as_postgres "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/postgres" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if wants redis && [[ -f "$SERVICES_DIR/redis/redis.pid" ]]; then
		redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	fi
	if wants docker && [[ -f "$SERVICES_DIR/docker/dockerd.pid" ]]; then
		kill "$(cat "$SERVICES_DIR/docker/dockerd.pid")" 2>/dev/null || true
		rm -f "$SERVICES_DIR/docker/dockerd.pid"
	fi
}

cmd_env() {
	wants postgres && echo "BRIDGE_TEST_POSTGRES=postgres://bridge@127.0.0.1:$PG_PORT/bridge?sslmode=disable"
	wants redis && echo "BRIDGE_TEST_REDIS=127.0.0.1:$REDIS_PORT"
	wants docker && echo "BRIDGE_TEST_DOCKER=1"
	wants chromium && echo "BRIDGE_TEST_CHROMIUM=$(command -v chromium || true)"
	return 0
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
*) die "usage: $0 install|start|stop|env" ;;
esac
