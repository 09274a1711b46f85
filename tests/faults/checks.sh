#!/usr/bin/env bash
# fclient check-queue and check-lock, fed known histories. check-queue: names unique, a create
# acknowledged before another was invoked has the lower counter, every acknowledged name listed,
# no more unclaimed names than creates of unknown outcome. check-lock: it passes mutual exclusion and a fenced counter,
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
	"$C" check-${CHECK:-lock} "$log" "$fin" "$@" >"$T/out" 2>"$T/err"
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
# the queue: q P OP INV DONE NAME (DONE "-": unknown outcome)
q() {
	echo "inv p=$1 op=$2 t=$3 key=/q f=create-seq"
	if [[ $4 == - ]]; then echo "info p=$1 op=$2 t=$(($3 + 1)) err=timeout"
	else echo "ok p=$1 op=$2 t=$4 value=/q/item-$5"; fi
}
CHECK=queue
{ q 1 1 100 200 0000000000; q 2 1 150 250 0000000001; q 1 2 300 400 0000000002; } >"$T/qh"
printf 'item-0000000000\nitem-0000000001\nitem-0000000002\n' >"$T/ql"
expect "queue: three creates in order, all listed" 0 "$T/qh" "$T/ql"
{ q 1 1 100 200 0000000001; q 2 1 300 400 0000000000; } >"$T/qo"
printf 'item-0000000000\nitem-0000000001\n' >"$T/qol"
expect "queue: a later create got the lower counter" 1 "$T/qo" "$T/qol"
grep -q "anomaly queue-order" "$T/err" || { echo "FAIL - queue-order named"; bad=$((bad + 1)); }
{ q 1 1 100 200 0000000001; q 2 1 150 250 0000000001; } >"$T/qd"
expect "queue: one name given twice" 1 "$T/qd" <(echo item-0000000001)
printf 'item-0000000000\nitem-0000000002\n' >"$T/qm"
expect "queue: an acknowledged name missing" 1 "$T/qh" "$T/qm"
{ q 1 1 100 200 0000000000; q 2 1 150 - x; } >"$T/qu"
printf 'item-0000000000\nitem-0000000001\n' >"$T/qul"
expect "queue: one unclaimed name, one create of unknown outcome" 0 "$T/qu" "$T/qul"
printf 'item-0000000000\nitem-0000000001\nitem-0000000002\n' >"$T/qul2"
expect "queue: two unclaimed names, one create of unknown outcome" 1 "$T/qu" "$T/qul2"
# a long history checks fast (sorted, not pairwise): 200,000 creates
awk 'BEGIN { for (i = 0; i < 200000; i++) { t = i * 10; printf "inv p=%d op=%d t=%d key=/q f=create-seq\nok p=%d op=%d t=%d value=/q/item-%010d\n", i % 7 + 1, i, t, i % 7 + 1, i, t + 5, i } }' >"$T/qbig"
awk 'BEGIN { for (i = 0; i < 200000; i++) printf "item-%010d\n", i }' >"$T/qbigl"
s0=$(date +%s)
expect "queue: 200,000 creates" 0 "$T/qbig" "$T/qbigl"
echo "     (checked in $(($(date +%s) - s0)) s)"
echo "$((n - bad))/$n passed"
((bad == 0))
