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
	for target in $(grep '^Fuzz' <<<"$listed" || true); do
		echo "fuzz.sh: $target in $pkg for $FUZZTIME" >&2
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" || rc=1
	done
done
exit "$rc"
