#!/usr/bin/env bash
# Mutation testing of the core packages with gremlins (github.com/go-gremlins/gremlins,
# pinned below, installed with go install into $REPO/.cache/tools on first use): every arithmetic operator,
# comparison and ++/-- of a package is changed in turn and the package's tests are run
# against each change; a change the tests pass with is a mutant that lived.
#
#   scripts/mutate.sh                          every package of the table below (make mutate)
#   scripts/mutate.sh schemas config           these packages only
#   DIFF=main scripts/mutate.sh bridge/providers
#                                              only mutants on lines changed since the merge
#                                              base with main (make mutate-short; none on main
#                                              itself)
#
# Each package runs on a snapshot of the working tree (the files git tracks or would track),
# so a run does not copy .cache/ into every worker and edits made during a run do not leak in.
# Results go to $OUT (default .cache/mutate/): PKG.json (gremlins' output), PKG.log (every
# mutant and its status) and report.md (the table of docs/testing.md, "Mutation testing",
# and the position of every mutant that lived or is not covered).
#
# Environment (all optional): WORKERS (mutants tested at once, default: the number of CPUs),
# TIMEOUT_COEFFICIENT (a mutant's tests time out after this many times the coverage run,
# default 3), DRY=1 (list the mutants and whether tests cover them, run none), DIFF (a git
# ref), FILES (names of the package's files to mutate, the others left alone: to split a long
# package into runs whose results add up), THRESHOLD_EFFICACY and THRESHOLD_COVERAGE
# (percent: fail the run when a package is below), OUT, KAFKA_PORT (the broker of packages
# that need one).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
GREMLINS_VERSION=v0.6.0
OUT=${OUT:-$REPO/.cache/mutate}
TIMEOUT_COEFFICIENT=${TIMEOUT_COEFFICIENT:-3}
WORKERS=${WORKERS:-0}
DIFF=${DIFF:-}
export KAFKA_PORT=${KAFKA_PORT:-39092}
# A rapid property test that fails writes a fail file under its package's testdata/rapid/,
# and every later run of the test replays it first: one mutant's kill would fail the runs of
# the mutants after it (it did, in the first run of consumers/alerts). rapid's own switch
# turns the files off; the fail files the tree holds are still replayed.
export RAPID_NOFAILFILE=1

# The packages, one line each: `add PKG TESTS [FLAGS [SERVICES]]`: the package (a directory
# below the module; its subdirectories are other packages and are not mutated with it), the
# packages whose tests run against each of its mutants, go test flags selecting those tests,
# and the services the selected tests need (kafka, postgres, redis). Tests run with CI=true,
# so a test whose service is not listed fails the run instead of being skipped.
# docs/testing.md ("Mutation testing") says why each package runs the tests it runs.
table() {
	add bridge/providers bridge/providers
	add schemas schemas
	add config config
	add bridge/dedup bridge/dedup "" "kafka redis"
	add bridge/ingress bridge/ingress
	add bridge/service "bridge/service bridge/spool" '-skip=^(TestDurableOnThreeBrokers|TestReadinessSeesALostBrokerInOneRound|TestBrokerOutage|TestStartDoesNotWaitForKafkaHistory)$' "kafka redis"
	add consumers "consumers consumers/retries consumers/alerts" '-run=^(TestModel|TestSetLag.*|TestForward.*|TestHeader.*|TestServe.*|TestTransact.*|TestMember.*|TestHolds.*)$'
	add consumers/retries consumers/retries '-skip=^(TestMovesAreExactlyOnceAcrossKills|TestBudgetCutDoesNotSkipARecord)$' kafka
	add consumers/alerts consumers/alerts '-skip=^(TestStateStaysBoundedUnderChurn|TestKillsNeverLoseAnAlert|TestKilledWhileSendingRepeatsOnceMarked)$' kafka
	add consumers/analytics/store consumers/analytics/store "" postgres
}

declare -A TESTS FLAGS SERVICES
ORDER=()
add() { ORDER+=("$1"); TESTS[$1]=$2; FLAGS[$1]=${3-}; SERVICES[$1]=${4-}; }
table

log() { echo "mutate.sh: $*" >&2; }
die() { log "$*"; exit 1; }
install_gremlins() {
	GREMLINS="$REPO/.cache/tools/gremlins-$GREMLINS_VERSION"
	[[ -x $GREMLINS ]] && return 0
	log "installing gremlins $GREMLINS_VERSION into .cache/tools..."
	local bin="$REPO/.cache/tools/gremlins.tmp"
	rm -rf "$bin" && mkdir -p "$bin"
	GOBIN="$bin" go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION"
	mv "$bin/gremlins" "$GREMLINS" && rmdir "$bin"
}

# snapshot copies the files git tracks or would track (not .cache/, bin/) into $SNAP.
snapshot() {
	SNAP="$WORK/src"
	mkdir -p "$SNAP"
	git ls-files -z --cached --others --exclude-standard |
		tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$SNAP"
}

# The go gremlins runs: `go test [flags] PATTERN`, once for the coverage and once per
# mutant, becomes `go test [flags] -vet=off TABLE_FLAGS TABLE_PACKAGES` (vet finds nothing a
# changed operator breaks, and costs a mutant's run seconds); a mutant that does not
# compile (gremlins counts any exit status 1 as killed) exits 2, which gremlins counts as
# not viable; and the coverage profile gets the case clauses Go's cover tool leaves out
# (scripts/mutate/main.go).
write_go_shim() {
	mkdir -p "$WORK/bin"
	go build -o "$WORK/bin/mutate-cover" ./scripts/mutate
	cat >"$WORK/bin/go" <<'EOF'
#!/usr/bin/env bash
[[ ${1-} == test ]] || exec "$MUTATE_GO" "$@"
read -ra extra <<<"$MUTATE_FLAGS"
read -ra pkgs <<<"$MUTATE_TESTS"
out=$(mktemp)
rc=0
"$MUTATE_GO" "${@:1:$#-1}" -vet=off "${extra[@]}" "${pkgs[@]}" >"$out" 2>&1 || rc=$?
if ((rc == 1)) && grep -Eq '\[(build|setup) failed\]$' "$out"; then rc=2; fi
cat "$out"
rm -f "$out"
prev=
for a in "$@"; do
	if [[ $prev == -coverprofile && $rc == 0 ]]; then
		"$(dirname "$0")/mutate-cover" "$MUTATE_MODULE" "$PWD" "$a" || rc=$?
	fi
	prev=$a
done
exit "$rc"
EOF
	chmod +x "$WORK/bin/go"
}

kafka_started=
services_started=
cleanup() {
	[[ -z ${WORK-} ]] || rm -rf "$WORK"
	[[ -z $services_started ]] || SERVICES="$services_started" scripts/services.sh stop || true
	[[ -z $kafka_started ]] || scripts/kafka.sh stop || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# need_services starts what SERVICES names and is not running yet, and sets SVC_ENV to the
# variables the tests read.
need_services() {
	SVC_ENV=()
	local s kv
	for s in $1; do
		case $s in
		kafka)
			if ! scripts/kafka.sh status >/dev/null 2>&1; then
				scripts/kafka.sh start >/dev/null
				kafka_started=1
			fi
			# Tests that stop and start a broker of their own start it from these.
			SVC_ENV+=("BRIDGE_TEST_KAFKA=127.0.0.1:$KAFKA_PORT" "KAFKA_LIBS=${KAFKA_CACHE:-$REPO/.cache/kafka}/libs"
				"KAFKA_JAVA=${KAFKA_JAVA:-$(command -v java)}" TESTCONTAINERS_RYUK_DISABLED=true
				TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1) ;;
		postgres | redis)
			kv=$(SERVICES=$s scripts/services.sh start)
			[[ -z $kv ]] || services_started+=" $kv"
			while IFS= read -r kv; do
				[[ $kv == "BRIDGE_TEST_${s^^}="* ]] && SVC_ENV+=("$kv")
			done < <(SERVICES=$s scripts/services.sh env)
			;;
		*) die "unknown service $s in the table" ;;
		esac
	done
}

# changed PKG: whether DIFF touches the package's code (gremlins runs everything when the
# diff is empty).
changed() {
	[[ -n $(git diff --merge-base "$DIFF" --name-only -- ":(glob)$1/*.go" ':(glob,exclude)**/*_test.go') ]]
}

run_package() {
	local pkg=$1
	[[ -n ${TESTS[$pkg]-} ]] || die "$pkg is not in the table of scripts/mutate.sh"
	local tests=${TESTS[$pkg]} flags=${FLAGS[$pkg]} services=${SERVICES[$pkg]}
	local name=${pkg//\//-} imports=()
	local p
	for p in $tests; do imports+=("$MODULE/$p"); done

	if [[ -n $DIFF ]] && ! changed "$pkg"; then
		log "$pkg: no code changed since the merge base with $DIFF"
		return 0
	fi
	need_services "$services"
	log "$pkg: each mutant runs go test $flags $tests${services:+ (with $services)}"
	local args=(unleash --workers "$WORKERS" --timeout-coefficient "$TIMEOUT_COEFFICIENT"
		--coverpkg "$MODULE/$pkg" --exclude-files / --output "$OUT/$name.json")
	local env=(CI=true PATH="$WORK/bin:$PATH" MUTATE_GO="$REAL_GO" MUTATE_FLAGS="$flags"
		MUTATE_TESTS="${imports[*]}" MUTATE_MODULE="$MODULE" "${SVC_ENV[@]}")
	[[ -z ${DRY-} ]] || args+=(--dry-run)
	if [[ -n ${FILES-} ]]; then
		local f
		for f in "$pkg"/*.go; do
			f=${f##*/}
			[[ $f == *_test.go || " $FILES " == *" $f "* ]] || args+=(--exclude-files "^${f//./\\.}\$")
		done
	fi
	if [[ -n $DIFF ]]; then
		args+=(--diff "$DIFF")
		env+=(GIT_DIR="$(git rev-parse --absolute-git-dir)" GIT_WORK_TREE="$SNAP"
			GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=diff.relative GIT_CONFIG_VALUE_0=true)
	fi
	rm -f "$OUT/$name.json"
	local rc=0
	(cd "$SNAP/$pkg" && env -u BRIDGE_TEST_KAFKA -u BRIDGE_TEST_POSTGRES -u BRIDGE_TEST_REDIS \
		-u BRIDGE_TEST_DOCKER -u BRIDGE_TEST_CHROMIUM -u KAFKA_LIBS -u KAFKA_JAVA "${env[@]}" "$GREMLINS" "${args[@]}") \
		2>&1 | tee "$OUT/$name.log" || rc=$?
	[[ -f $OUT/$name.json ]] || die "$pkg: gremlins wrote no result (exit $rc; see $OUT/$name.log)"
	local date
	date=$(date -u +%Y-%m-%d)
	jq -r --arg pkg "$pkg" --arg tests "$tests${flags:+ $flags}" --arg date "$date" --arg diff "$DIFF" --arg files "${FILES-}" '
		[.files[].mutations[]] as $m
		| def n(s): [$m[] | select(.status == s)] | length;
		  (n("KILLED")) as $k | (n("LIVED")) as $l | (n("NOT COVERED")) as $nc
		| (n("TIMED OUT")) as $to | (n("NOT VIABLE")) as $nv | (n("RUNNABLE")) as $r
		| def pct(a; b): if b == 0 then "–" else "\(a * 1000 / b | round / 10) %" end;
		"| `\($pkg)`\(if $diff != "" then " (lines changed since \($diff))" else "" end)\(if $files != "" then " (\($files))" else "" end) | \($k + $l + $nc + $to + $nv + $r) | \($k) | \($l) | \($nc) | \($to) | \($nv) | \(pct($k; $k + $l)) | \(pct($k + $l + $r; $k + $l + $r + $nc)) |"' \
		"$OUT/$name.json" >"$OUT/$name.row"
	jq -r --arg pkg "$pkg" '
		.files[] | .file_name as $f | .mutations[]
		| select(.status == "LIVED" or .status == "NOT COVERED" or .status == "TIMED OUT")
		| "\(.status)\t\($pkg)/\($f):\(.line):\(.column)\t\(.type)"' "$OUT/$name.json" |
		sort -t$'\t' -k2,2V >"$OUT/$name.survivors"
	if [[ -n ${THRESHOLD_EFFICACY-}${THRESHOLD_COVERAGE-} ]]; then
		jq -e --argjson e "${THRESHOLD_EFFICACY:-0}" --argjson c "${THRESHOLD_COVERAGE:-0}" '
			[.files[].mutations[]] as $m
			| def n(s): [$m[] | select(.status == s)] | length;
			  (n("KILLED")) as $k | (n("LIVED")) as $l | (n("NOT COVERED")) as $nc
			| ($k + $l == 0 or $k * 100 >= $e * ($k + $l))
			  and ($k + $l + $nc == 0 or ($k + $l) * 100 >= $c * ($k + $l + $nc))' \
			"$OUT/$name.json" >/dev/null || failed+=("$pkg")
	fi
	ran+=("$pkg")
}

# main runs once bash has read the whole file, and the line that calls it exits, so editing
# the script during a long run changes nothing in it (bash reads a script as it goes: a run
# that went on reading after main, in a file edited in place meanwhile, met a fragment of it).
main() {
	command -v go >/dev/null || die "go not found on PATH"
	if ! command -v jq >/dev/null; then
		[[ $(id -u) == 0 ]] || die "jq is missing: apt-get install jq"
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
	fi
	[[ -z $DIFF ]] || git rev-parse -q --verify "$DIFF^{commit}" >/dev/null || die "DIFF=$DIFF: no such commit"
	REAL_GO=$(command -v go)
	MODULE=$(go list -m)
	mkdir -p "$OUT"
	install_gremlins
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/mutate-XXXXXX")
	write_go_shim
	snapshot
	local rev
	rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with changes')"

	pkgs=("$@")
	((${#pkgs[@]})) || pkgs=("${ORDER[@]}")
	ran=()
	failed=()
	for pkg in "${pkgs[@]}"; do run_package "${pkg%/}"; done

	{
		echo "gremlins $GREMLINS_VERSION, $(date -u +%Y-%m-%d), $rev, ${WORKERS/#0/one per CPU} workers"
		echo
		echo "| package | mutants | killed | lived | not covered | timed out | not viable | efficacy | mutant coverage |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		for pkg in "${ran[@]}"; do cat "$OUT/${pkg//\//-}.row"; done
		echo
		for pkg in "${ran[@]}"; do cat "$OUT/${pkg//\//-}.survivors"; done
	} >"$OUT/report.md"
	cat "$OUT/report.md"
	if ((${#failed[@]})); then die "below THRESHOLD_EFFICACY=${THRESHOLD_EFFICACY:-0} % or THRESHOLD_COVERAGE=${THRESHOLD_COVERAGE:-0} %: ${failed[*]}"; fi
}

main "$@"; exit
