#!/usr/bin/env bash
# Throughput figures of the mount (printed, for the README and regressions): a write loop
# (open O_TRUNC, write, close) by 1 and by 8 processes, and a cat loop (open, read, close), by
# default (the page cache serves repeated reads) and with --no-read-cache. Checks that they work
# and see the latest value.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" --read-cache || exit 1
SECS=${QFS_PERF_SECS:-2}

cat >"$T/loop.py" <<'PY'
import os, sys, time
mode, path, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
n = 0
end = time.monotonic() + secs
if mode == "write":
    while time.monotonic() < end:
        for _ in range(20):
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            os.write(fd, b"value %d" % n)
            os.close(fd)
            n += 1
else:
    while time.monotonic() < end:
        for _ in range(200):
            fd = os.open(path, os.O_RDONLY)
            os.read(fd, 4096)
            os.close(fd)
            n += 1
print(n)
PY
echo x >"$M/w0"
n=$(python3 "$T/loop.py" write "$M/w0" "$SECS")
echo "     write loop, 1 process: $((n / SECS)) writes/s"
eq "write loop: one version per write" "$(ver "$M/w0")" $((n + 1))

pids=()
for p in $(seq 1 8); do
	echo x >"$M/w$p"
	python3 "$T/loop.py" write "$M/w$p" "$SECS" >"$T/n$p" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
tot=0
for p in $(seq 1 8); do tot=$((tot + $(cat "$T/n$p"))); done
echo "     write loop, 8 processes on 8 nodes: $((tot / SECS)) writes/s"
check "8 writers made progress" test "$tot" -gt 0

echo "latest" >"$M/r"
n=$(python3 "$T/loop.py" read "$M/r" "$SECS")
echo "     cat loop (open, read 4 KiB, close), 1 process: $((n / SECS)) reads/s"
echo "changed" >"$M/r"
eq "cat after a write sees it" "$(cat "$M/r")" "changed"
stop_pid "$PID" "$M" || fail "stop"

start_fg "$T/data" "$M" --no-read-cache || exit 1
n=$(python3 "$T/loop.py" read "$M/r" "$SECS")
echo "     cat loop with --no-read-cache, 1 process: $((n / SECS)) reads/s"
stale=0
for i in $(seq 1 100); do
	echo "v$i" >"$M/r"
	[[ "$(cat "$M/r")" == "v$i" ]] || stale=$((stale + 1))
done
eq "--no-read-cache: 100 write-then-cat rounds, no stale read" "$stale" 0
finish
