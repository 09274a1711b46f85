#!/usr/bin/env bash
# qfs-check's exit statuses and messages, and its speed on a generated 10^4-op history.
#   cli.sh QFS_CHECK DATA_DIR
set -uo pipefail
bin=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # expect STATUS DESCRIPTION -- command...
	local want=$1 what=$2
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [[ $got -ne $want ]]; then
		echo "FAIL: $what: exit $got, expected $want"
		cat "$tmp/out" "$tmp/err"
		fail=1
	fi
}

expect 0 "linearizable history" -- "$bin" "$data/ok.hist"
expect 1 "stale read" -- "$bin" "$data/stale.hist"
grep -q "anomaly nonlinearizable" "$tmp/out" || { echo "FAIL: no witness printed"; fail=1; }
grep -q "seed=42" "$tmp/out" || { echo "FAIL: seed not printed"; fail=1; }
expect 2 "malformed line" -- "$bin" "$data/bad.hist"
grep -q "bad.hist:3:" "$tmp/err" || { echo "FAIL: no line number: $(cat "$tmp/err")"; fail=1; }
expect 2 "missing file" -- "$bin" "$tmp/none.hist"
expect 2 "bad option" -- "$bin" --bogus
expect 0 "stdin" -- sh -c "'$bin' - < '$data/ok.hist'"

"$bin" --generate --seed 11 --ops 10000 --procs 10 --keys 3 >"$tmp/g.hist"
expect 0 "generated 10^4 ops, 10 processes" -- "$bin" --quiet "$tmp/g.hist"
cat "$tmp/out"
"$bin" --generate --seed 12 --ops 10000 --procs 30 --keys 3 >"$tmp/g30.hist"
expect 0 "generated 10^4 ops, 30 processes" -- "$bin" --quiet "$tmp/g30.hist"
cat "$tmp/out"
"$bin" --generate --seed 3 --ops 2000 --lread 0 --mutate >"$tmp/m.hist"
expect 1 "generated with a planted anomaly" -- "$bin" --shrink-seconds 5 "$tmp/m.hist"
tail -1 "$tmp/out"
exit $fail
