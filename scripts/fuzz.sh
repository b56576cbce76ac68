#!/usr/bin/env bash
# Runs every fuzz target of the module (every FuzzX in any package, found with go test
# -list, so a new target runs without a line here), one after another, each for FUZZTIME.
#
#   scripts/fuzz.sh                     each target for 1m (make fuzz)
#   FUZZTIME=5s scripts/fuzz.sh         the short run CI makes
#   scripts/fuzz.sh ./bridge/ingress/   only the targets of these packages
#
# A failing input is written to the package's testdata/fuzz/FuzzX/ (commit it: it becomes a
# regression test of go test) and the run fails. FUZZMINIMIZETIME bounds the minimization of
# each new input (go's default, 60s, stalls short runs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
FUZZTIME=${FUZZTIME:-1m}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}

# fuzz_one fuzzes one target. Go's fuzzing coordinator (before go1.27, golang/go#75804) can
# fail a target at the -fuzztime deadline with a bare "context deadline exceeded" and no
# failing input, on a loaded machine: such a run is tried once more. A run that wrote a
# failing input, or failed in any other way, fails at once; so does a second bare deadline.
fuzz_one() {
	local pkg=$1 dir=$2 target=$3 try out before after
	out=$(mktemp)
	for try in 1 2; do
		echo "fuzz.sh: $target in $pkg for $FUZZTIME" >&2
		before=$( (find "$dir/testdata/fuzz/$target" -type f 2>/dev/null || true) | wc -l)
		if go test -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" 2>&1 | tee "$out"; then
			rm -f "$out"
			return 0
		fi
		after=$( (find "$dir/testdata/fuzz/$target" -type f 2>/dev/null || true) | wc -l)
		if ((try == 2)) || ((after != before)) || ! bare_deadline "$out"; then
			rm -f "$out"
			return 1
		fi
		echo "fuzz.sh: $target failed on the fuzzing coordinator's deadline with no failing input (golang/go#75804); once more" >&2
	done
}

# bare_deadline tells whether the output in $1 failed only on the coordinator's deadline: a
# FAIL of the target followed by "context deadline exceeded", and no panic, no "Failing input".
bare_deadline() {
	grep -q -- '--- FAIL: Fuzz' "$1" && grep -q '^    context deadline exceeded$' "$1" &&
		! grep -q -e 'Failing input' -e '^panic:' -e 'testdata/fuzz/' "$1"
}

pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)
rc=0
for pkg in $(go list "${pkgs[@]}"); do
	# A package whose test binary does not build or run fails the run: it would otherwise
	# contribute no target, silently. Only grep's "no target here" is not a failure.
	if ! listed=$(go test -list '^Fuzz' "$pkg"); then
		echo "fuzz.sh: go test -list failed in $pkg: its fuzz targets cannot be run" >&2
		rc=1
		continue
	fi
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep '^Fuzz' <<<"$listed" || true); do
		fuzz_one "$pkg" "$dir" "$target" || rc=1
	done
done
exit "$rc"
