#!/usr/bin/env bash
# Before/after of an optimization, measured in one run on this machine: the request path's
# micro-benchmarks of BASE and of the work tree, run alternately ROUNDS times each, and the
# ratio of their medians (after/before; below 1 is faster or fewer).
#
#   scripts/compare.sh BASE_REF [ROUNDS]      e.g. scripts/compare.sh 5bea765 6
#
# BASE_REF must already have bench/steps_test.go (the load benchmark's commit or later).
# With COMPARE_LOAD=1 it also runs the load benchmark's phases once for BASE's bridge binary
# and once for the work tree's, against one broker, and prints both tables (flags for
# go run ./bench in COMPARE_LOAD_ARGS, default "-duration 8s -micro=false").
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
base=${1:?usage: scripts/compare.sh BASE_REF [ROUNDS]}
rounds=${2:-6}
filter=${COMPARE_BENCH:-'Verify|Normalize|Dedup|Encode|HotPath'}

work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
(cd "$work/base" && go test -c -o "$work/before.test" ./bench && CGO_ENABLED=0 go build -o "$work/before-bridge" ./cmd/bridge)
go test -c -o "$work/after.test" ./bench

for ((i = 1; i <= rounds; i++)); do
	for side in before after; do
		"$work/$side.test" -test.run '^$' -test.bench "$filter" -test.benchmem -test.count 1 |
			awk -v side="$side" '/^Benchmark/ {print side, $0}' >>"$work/results.txt"
	done
done

echo "| benchmark | before ns/op | after ns/op | ratio | before allocs | after allocs |"
echo "|---|--:|--:|--:|--:|--:|"
awk '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	name = $2; sub(/-[0-9]+$/, "", name)
	for (i = 3; i <= NF; i++) {
		if ($(i + 1) == "ns/op") ns[$1, name] = ns[$1, name] " " $i
		if ($(i + 1) == "allocs/op") al[$1, name] = al[$1, name] " " $i
	}
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
}
END {
	for (k = 1; k <= n; k++) {
		m = order[k]; b = median(ns["before", m]); a = median(ns["after", m])
		printf "| %s | %.0f | %.0f | %.2f | %s | %s |\n", m, b, a, (b > 0 ? a / b : 0), median(al["before", m]), median(al["after", m])
	}
}' "$work/results.txt"

[[ "${COMPARE_LOAD:-0}" == 1 ]] || exit 0
CGO_ENABLED=0 go build -o "$work/after-bridge" ./cmd/bridge
export KAFKA_CACHE=${KAFKA_CACHE:-$REPO/.cache/kafka} KAFKA_PORT=${KAFKA_PORT:-39092}
scripts/kafka.sh fetch
scripts/kafka.sh start >/dev/null
trap 'scripts/kafka.sh stop || true; git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
read -r -a args <<<"${COMPARE_LOAD_ARGS:--duration 8s -micro=false}"
for side in before after; do
	go run ./bench -brokers "127.0.0.1:$KAFKA_PORT" -bridge-bin "$work/$side-bridge" -out "$work/$side" "${args[@]}" >"$work/$side.log" 2>&1 ||
		{ cat "$work/$side.log"; exit 1; }
	echo
	echo "## load, $side ($([[ $side == before ]] && echo "$base" || echo "work tree"))"
	sed -n '/^| phase | loop/,/^$/p;/^| target/,/^$/p' "$work/$side/RESULTS.md"
done
