#!/usr/bin/env bash
# What a write() acknowledged survives kill -9 of the daemon: after a restart the node has the
# same data, version and mzxid.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
D=$T/data
start_fg "$D" "$M" || exit 1

for round in 1 2 3; do
	mkdir -p "$M/r$round"
	for i in $(seq 1 20); do echo "round $round value $i" >"$M/r$round/n"; done
	head -c 50000 /dev/urandom >"$T/bin$round"
	cp "$T/bin$round" "$M/r$round/bin"
	want="$(cat "$M/r$round/n")|$(ver "$M/r$round/n")|$(zk "$M/r$round/n" mzxid)|$(zk "$M/r$round/n" czxid)"
	echo "last $round" >"$M/r$round/n" # kill right after this write returns
	kill -9 "$PID"
	want="last $round|$(($(cut -d'|' -f2 <<<"$want") + 1))"  # data|version expected
	wait_for 10 gone "$PID" || fail "daemon survived kill -9"
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M"
	start_fg "$D" "$M" || exit 1
	got="$(cat "$M/r$round/n")|$(ver "$M/r$round/n")"
	eq "round $round: last acknowledged write survives kill -9 (data|version)" "$got" "$want"
	check "round $round: binary node intact" cmp -s "$T/bin$round" "$M/r$round/bin"
done
# the kill comes from the writer itself, the instant its write() returned
cat >"$T/wk.py" <<'PY'
import os, signal, sys
path, pid = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"acknowledged")
os.kill(pid, signal.SIGKILL)
PY
v0=$(ver "$M/r3/n")
python3 "$T/wk.py" "$M/r3/n" "$PID"
wait_for 10 gone "$PID" || fail "daemon survived kill -9"
fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M"
start_fg "$D" "$M" || exit 1
eq "SIGKILL the instant write() returned: data and version kept" "$(cat "$M/r3/n"):$(ver "$M/r3/n")" "acknowledged:$((v0 + 1))"

# mzxid, stat and the applied zxid survive too
echo "final" >"$M/r3/n"
st=$(getfattr -d --absolute-names "$M/r3/n")
ap=$(grep '^applied=' "$M/.zk/status" | cut -d= -f2)
kill -9 "$PID"
wait_for 10 gone "$PID"
fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M"
start_fg "$D" "$M" || exit 1
eq "whole stat (version, mzxid, mtime, ...) after kill -9 and restart" "$(getfattr -d --absolute-names "$M/r3/n")" "$st"
eq "applied zxid after restart" "$(grep '^applied=' "$M/.zk/status" | cut -d= -f2)" "$ap"
mz=$(zk "$M/r3/n" mzxid)
echo after >"$M/r3/n"
check "zxids keep increasing after restart" test $(($(zk "$M/r3/n" mzxid))) -gt $((mz))
finish
