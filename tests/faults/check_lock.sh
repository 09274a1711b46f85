#!/usr/bin/env bash
# fclient check-lock, fed known lock histories: it passes mutual exclusion and a fenced counter,
# and reports an overlap of two holders that both incremented unless the one that acquired first
# provably lost its lock node during its hold (held_after=0), or could not tell (-1) while a
# fault touched its node.
C=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0 bad=0
expect() { # expect NAME STATUS LOG FINAL [FAULTS]
	local name=$1 want=$2 log=$3 fin=$4 got
	shift 4
	"$C" check-lock "$log" "$fin" "$@" >"$T/out" 2>"$T/err"
	got=$?
	n=$((n + 1))
	if [[ $got == "$want" ]]; then echo "ok   - $name"; else
		echo "FAIL - $name: status $got, want $want"; sed 's/^/     /' "$T/out" "$T/err"; bad=$((bad + 1))
	fi
}
l() { echo "lock p=$1 acq=$2 rel=$3 inc=$4 value=$5 mount=/m$6 held_after=$7"; }

{ l 1 100 200 ok 1 1 1; l 2 300 400 ok 2 2 1; l 3 500 600 ok 3 3 1; } >"$T/serial"
expect "three holders one after another" 0 "$T/serial" 3
expect "a lost acknowledged increment (counter 2 of 3)" 1 "$T/serial" 2

{ l 1 100 500 ok 1 1 1; l 2 300 400 ok 2 2 1; } >"$T/overlap"
expect "two holders at once, the first still held its node after its increment" 1 "$T/overlap" 2
grep -q "anomaly lock-overlap: p=1 and p=2" "$T/err" || { echo "FAIL - overlap named"; bad=$((bad + 1)); }

{ l 1 100 500 ok 1 1 0; l 2 300 400 ok 2 2 1; } >"$T/lost"
expect "two holders at once, the first lost its node (session expired)" 0 "$T/lost" 2
{ l 1 100 500 ok 1 1 1; l 2 300 400 ok 2 2 0; } >"$T/lost2"
expect "two holders at once, the second had lost its node while it waited" 0 "$T/lost2" 2

{ l 1 100 500 ok 1 1 -1; l 2 300 400 ok 2 2 1; } >"$T/unknown"
echo "fault kind=pause from=150 to=450 mounts=/m3,/m1" >"$T/f1"
echo "fault kind=pause from=150 to=450 mounts=/m2,/m3" >"$T/f2"
echo "fault kind=pause from=600 to=700 mounts=/m1" >"$T/f3"
expect "first holder unsure, a fault on its node during the hold" 0 "$T/unknown" 2 "$T/f1"
expect "first holder unsure, faults on other nodes only" 1 "$T/unknown" 2 "$T/f2"
expect "first holder unsure, a fault on its node after the hold" 1 "$T/unknown" 2 "$T/f3"
expect "first holder unsure, no fault file" 1 "$T/unknown" 2

{ l 1 100 500 ok 1 1 1; l 2 300 400 badversion 2 2 1; } >"$T/fenced"
expect "an overlapping holder refused by the fence" 0 "$T/fenced" 1
echo "$((n - bad))/$n passed"
((bad == 0))
