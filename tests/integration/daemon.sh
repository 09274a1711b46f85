#!/usr/bin/env bash
# The daemon's life cycle: it detaches only once the mount is ready, a second daemon on the same
# data directory is refused, SIGTERM and fusermount3 -u unmount and exit 0, --help and --version.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
D=$T/data
mkdir -p "$M"

check "--help exits 0 and shows usage" bash -c "'$QFS' --help | grep -q 'usage: quorumfs --data DIR'"
check "--version" bash -c "'$QFS' --version | grep -Eq '^quorumfs [0-9]+\.[0-9]+'"
"$QFS" "$M" >/dev/null 2>&1
eq "missing --data: usage error (exit 2)" "$?" 2
"$QFS" --data "$D" >/dev/null 2>&1
eq "missing mount point: usage error (exit 2)" "$?" 2

# detached: the command returns once mounted
"$QFS" --data "$D" "$M" 2>"$T/err1"
rc=$?
eq "detached start exits 0" "$rc" 0
check "mounted as soon as the command returned" mountpoint -q "$M"
QFS_MNTS+=("$M")
DPID=$(lock_holder "$D")
[[ -n "$DPID" ]] && QFS_PIDS+=("$DPID")
check "the detached daemon holds the data directory's lock" test -n "$DPID"
check "the daemon is not a child of the shell that started it" bash -c "[[ \$(awk '{print \$4}' /proc/$DPID/stat) != $$ ]]"
echo x >"$M/n"
eq "the detached daemon serves" "$(cat "$M/n")" x
# every thread under SCHED_BATCH (field 41 of /proc/PID/task/TID/stat is the policy: 0 normal,
# 3 batch); the FUSE workers that just served are among them
policies() { for t in /proc/"$1"/task/*; do awk '{print $41}' "$t/stat"; done | sort -u | tr '\n' ' '; }
eq "the daemon and all its threads run under SCHED_BATCH (the default)" "$(policies "$DPID")" "3 "
check "the daemon has its worker threads" test "$(ls /proc/"$DPID"/task | wc -l)" -ge 4

# a second daemon on the same data directory
mkdir -p "$T/mnt2"
"$QFS" --data "$D" "$T/mnt2" 2>"$T/err2"
rc=$?
check "second daemon on the same data directory: non-zero exit" test "$rc" -ne 0
check "second daemon: clear message" grep -q "in use by another quorumfs" "$T/err2"
check "second daemon did not mount" bash -c "! mountpoint -q '$T/mnt2'"
"$QFS" -f --data "$D" "$T/mnt2" 2>"$T/err3"
check "second daemon in the foreground refused too" test $? -ne 0
eq "the first daemon still serves" "$(cat "$M/n")" x

"$QFS" --sched fast --data "$T/d2" "$T/mnt2" >/dev/null 2>"$T/err4"
eq "--sched with a bad value: usage error (exit 2)" "$?" 2
check "--sched bad value: clear message" grep -q "bad --sched 'fast'" "$T/err4"

# SIGTERM unmounts and exits
kill -TERM "$DPID"
check "SIGTERM: daemon exits" wait_for 10 gone "$DPID"
check "SIGTERM: unmounted" wait_for 5 not_mounted "$M"

# foreground: exit status 0 after SIGTERM and after fusermount3 -u
"$QFS" -f --data "$D" "$M" 2>"$T/fg.log" &
P=$!
QFS_PIDS+=("$P")
wait_for 10 is_mounted "$M" || fail "foreground daemon did not mount"
eq "data kept across daemons" "$(cat "$M/n")" x
kill -TERM "$P"
wait "$P"
eq "foreground daemon: exit 0 on SIGTERM" "$?" 0
check "unmounted after SIGTERM" not_mounted "$M"
check "log says why it stopped" grep -q "stopping (Terminated)" "$T/fg.log"

"$QFS" -f --sched normal --data "$D" "$M" 2>"$T/fg2.log" &
P=$!
QFS_PIDS+=("$P")
wait_for 10 is_mounted "$M" || fail "foreground daemon did not mount"
eq "--sched normal: every thread under the normal policy" "$(policies "$P")" "0 "
fusermount3 -u "$M"
wait "$P"
eq "fusermount3 -u: daemon exits 0" "$?" 0

# SIGTERM while writers are busy: exits 0, unmounts, and every write that returned is kept
"$QFS" -f --data "$D" "$M" 2>"$T/fg3.log" &
P=$!
QFS_PIDS+=("$P")
wait_for 10 is_mounted "$M" || fail "foreground daemon did not mount"
cat >"$T/wl.py" <<'PY'
import os, sys
p, out = sys.argv[1], sys.argv[2]
last = None
i = 0
try:
    while True:
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"w%d" % i)
        last = i
        os.close(fd)
        i += 1
except OSError:
    pass
open(out, "w").write("%s\n" % last)
PY
echo start >"$M/load"
python3 "$T/wl.py" "$M/load" "$T/last" &
WL=$!
wait_for 5 bash -c "[[ \$(getfattr --only-values -n user.zk.version '$M/load' 2>/dev/null) -gt 50 ]]" || fail "load did not start"
kill -TERM "$P"
wait "$P"
rc=$?
eq "SIGTERM under load: exit 0" "$rc" 0
((rc == 0)) || cat "$T/fg3.log" >&2
wait "$WL"
check "SIGTERM under load: unmounted" not_mounted "$M"
"$QFS" -f --data "$D" "$M" 2>"$T/fg4.log" &
P=$!
QFS_PIDS+=("$P")
wait_for 10 is_mounted "$M" || fail "restart"
last=$(cat "$T/last")
got=$(cat "$M/load")
check "the last write that returned ($last) is kept (node has w${got#w})" test "${got#w}" -ge "$last"
kill -TERM "$P"
wait "$P"

# a detached daemon whose mount fails reports it and exits non-zero
"$QFS" --data "$T/data3" "$T/does-not-exist" 2>"$T/err4"
check "bad mount point: non-zero exit" test $? -ne 0
check "bad mount point: message" grep -q "mount point" "$T/err4"
finish
