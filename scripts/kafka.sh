#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for tests,
# run from the official jars (org.apache.kafka:kafka_2.13, pinned in
# scripts/kafka/pom.xml) with the machine's Java 17+.
#
#   scripts/kafka.sh fetch    resolve the jars with Maven into $KAFKA_CACHE/libs
#   scripts/kafka.sh start    fresh data dir, format, start, wait until ready
#   scripts/kafka.sh stop     SIGTERM, wait, SIGKILL after a bound
#   scripts/kafka.sh status   exit 0 and print the address if running
#
# Environment (all optional):
#   KAFKA_CACHE            default $REPO/.cache/kafka
#   KAFKA_PORT             client listener port, default 39092
#   KAFKA_CONTROLLER_PORT  controller listener port, default 39093
#   KAFKA_JAVA             java binary, default: java on PATH
#   KAFKA_HEAP_OPTS        default "-Xms256m -Xmx512m"
#   KAFKA_START_TIMEOUT    seconds to wait for readiness, default 120
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM, default 30
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM="$REPO/scripts/kafka/pom.xml"
LOG4J_CONF="$REPO/scripts/kafka/log4j2.properties"
KAFKA_VERSION=4.1.1
KAFKA_CACHE=${KAFKA_CACHE:-$REPO/.cache/kafka}
LIBS="$KAFKA_CACHE/libs"
RUN="$KAFKA_CACHE/run"
PIDFILE="$RUN/kafka.pid"
LOG="$RUN/kafka.log"
KAFKA_PORT=${KAFKA_PORT:-39092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39093}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
ADDR="127.0.0.1:$KAFKA_PORT"

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

# fetched_marker is what the marker file must contain for $LIBS to count as
# complete: the Kafka version plus the pom's hash, so editing the pom refetches.
fetched_marker() { echo "kafka_2.13-$KAFKA_VERSION $(sha256sum "$POM" | cut -d' ' -f1)"; }

is_fetched() {
	[[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$(fetched_marker)" &&
		-f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]
}

cmd_fetch() {
	if is_fetched; then
		log "kafka $KAFKA_VERSION already fetched in $LIBS"
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || die "mvn not found (install Maven, e.g. apt-get install -y maven)"
	mkdir -p "$KAFKA_CACHE"
	local tmp="$KAFKA_CACHE/libs.tmp.$$"
	rm -rf "$tmp"
	log "fetching kafka_2.13:$KAFKA_VERSION and its runtime dependencies with Maven..."
	if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_CACHE/fetch.log" 2>&1; then
		tail -n 40 "$KAFKA_CACHE/fetch.log" >&2
		rm -rf "$tmp"
		die "Maven could not resolve the Kafka jars (full log: $KAFKA_CACHE/fetch.log)"
	fi
	[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"; }
	fetched_marker >"$tmp/.complete"
	rm -rf "$LIBS"
	mv "$tmp" "$LIBS"
	log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars into $LIBS"
}

find_java() {
	JAVA=${KAFKA_JAVA:-}
	if [[ -z "$JAVA" ]]; then
		JAVA=$(command -v java 2>/dev/null) || die "java not found (Kafka $KAFKA_VERSION needs Java 17+, e.g. apt-get install -y openjdk-17-jre-headless)"
	fi
	[[ -x "$JAVA" ]] || JAVA=$(command -v "$JAVA" 2>/dev/null) || die "KAFKA_JAVA=$KAFKA_JAVA is not executable"
	local v major
	v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
	major=${v%%.*}
	[[ "$major" == 1 ]] && major=$(echo "$v" | cut -d. -f2)
	[[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the version of $JAVA ($v)"
	((major >= 17)) || die "$JAVA is Java $v; Kafka $KAFKA_VERSION needs Java 17+"
}

# running prints the pid and returns 0 if the pid file names a live Kafka.
running() {
	[[ -f "$PIDFILE" ]] || return 1
	local pid
	pid=$(cat "$PIDFILE")
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
	echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_cluster_id() {
	# 16 random bytes, base64url without padding, as Kafka's Uuid prints them;
	# a leading '-' would be read as a flag, so draw again.
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		[[ "$id" != -* ]] && { echo "$id"; return; }
	done
}

write_config() {
	sed -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@DATA@|$RUN/data|g" \
		"$REPO/scripts/kafka/server.properties" >"$RUN/server.properties"
}

jvm_args() {
	# shellcheck disable=SC2206 # KAFKA_HEAP_OPTS is a list of flags
	JVM_ARGS=($KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
		-Dlog4j2.configurationFile="$LOG4J_CONF" -cp "$LIBS/*")
}

cmd_start() {
	find_java
	is_fetched || cmd_fetch
	local pid
	if pid=$(running); then
		log "already running (pid $pid)"
		echo "$ADDR"
		return 0
	fi
	port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is already in use on 127.0.0.1 (set KAFKA_PORT)"
	port_open "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is already in use on 127.0.0.1 (set KAFKA_CONTROLLER_PORT)"

	rm -rf "$RUN"
	mkdir -p "$RUN/data"
	write_config
	jvm_args
	if ! "$JAVA" "${JVM_ARGS[@]}" kafka.tools.StorageTool format --config "$RUN/server.properties" \
		--cluster-id "$(random_cluster_id)" >"$RUN/format.log" 2>&1; then
		cat "$RUN/format.log" >&2
		die "formatting the storage in $RUN/data failed"
	fi

	local start=$SECONDS
	: >"$LOG"
	# setsid: the broker must not get the terminal's Ctrl-C meant for make/go;
	# it is stopped through the pid file.
	local setsid=()
	command -v setsid >/dev/null 2>&1 && setsid=(setsid)
	"${setsid[@]}" "$JAVA" "${JVM_ARGS[@]}" kafka.Kafka "$RUN/server.properties" >"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"

	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 60 "$LOG" >&2
			rm -f "$PIDFILE"
			die "Kafka exited during startup (log: $LOG)"
		fi
		if grep -qs 'Kafka Server started' "$LOG" && port_open "$KAFKA_PORT"; then
			break
		fi
		if ((SECONDS - start >= KAFKA_START_TIMEOUT)); then
			tail -n 60 "$LOG" >&2
			cmd_stop || true
			die "Kafka not ready after ${KAFKA_START_TIMEOUT}s (log: $LOG)"
		fi
		sleep 0.2
	done
	log "Kafka $KAFKA_VERSION ready in $((SECONDS - start))s (pid $pid, log $LOG)"
	echo "$ADDR"
}

cmd_stop() {
	local pid
	if ! pid=$(running); then
		rm -f "$PIDFILE"
		log "not running"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "still running ${KAFKA_STOP_TIMEOUT}s after SIGTERM; killing"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.2
	done
	rm -f "$PIDFILE"
	log "stopped (pid $pid)"
}

cmd_status() {
	local pid
	if pid=$(running); then
		echo "running (pid $pid) at $ADDR"
	else
		echo "not running"
		return 3
	fi
}

case "${1:-}" in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 fetch|start|stop|status" >&2
	exit 2
	;;
esac
