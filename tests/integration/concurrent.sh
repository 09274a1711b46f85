#!/usr/bin/env bash
# Concurrent writers from several processes on one node: every write is one committed version,
# none lost or merged; readers on the mount see every write as soon as it returns.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

echo start >"$M/shared"
v0=$(ver "$M/shared")
P=8
N=50
cat >"$T/writer.py" <<'PY'
import os, sys
path, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = []
for i in range(n):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    val = f"{me}-{i}".encode()
    assert os.write(fd, val) == len(val)
    os.close(fd)
    # right after our write returned, the node holds our value or a later one: its version is
    # at least the one our write made, and the mzxid only grows
    seen.append(int(os.getxattr(path, "user.zk.mzxid"), 16))
assert seen == sorted(seen), "mzxid went back"
print("ok")
PY
pids=()
for p in $(seq 1 $P); do
	python3 "$T/writer.py" "$M/shared" "w$p" $N >"$T/out.$p" 2>&1 &
	pids+=($!)
done
bad=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || bad=1; done
((bad == 0)) && ok "$P writers finished" || { fail "a writer failed"; cat "$T"/out.*; }
eq "$P x $N writes: version went up by exactly $((P * N))" "$(ver "$M/shared")" $((v0 + P * N))
check "final value is one writer's last write" grep -Eq "^w[0-9]+-$((N - 1))$" <<<"$(cat "$M/shared")"

# writes to different nodes in parallel also each commit once
pids=()
for p in $(seq 1 $P); do
	(for i in $(seq 1 $N); do echo "$i" >"$M/own$p"; done) &
	pids+=($!)
done
for i in "${!pids[@]}"; do wait "${pids[$i]}"; done
allok=1
for p in $(seq 1 $P); do
	[[ "$(ver "$M/own$p")" == "$N" && "$(cat "$M/own$p")" == "$N" ]] || allok=0
done
((allok)) && ok "$P writers on their own nodes: $N versions each" || fail "own-node versions"

# every process sees a write as soon as it returns (kernel caches kept exact)
cat "$M/shared" >/dev/null
stale=0
for i in $(seq 1 200); do
	echo "v$i" >"$M/shared"
	[[ "$(cat "$M/shared")" == "v$i" ]] || stale=$((stale + 1))
	[[ "$(stat -c %s "$M/shared")" == "${#i}" ]] || [[ "$(stat -c %s "$M/shared")" == $((${#i} + 2)) ]] || stale=$((stale + 1))
done
eq "200 write-then-read rounds across processes: no stale read" "$stale" 0
finish
