#!/usr/bin/env bash
# A failed commit is returned by the write() itself, so even bash's builtin echo (which ignores
# errors from close) fails; nothing of the failed write is kept, nothing committed before is lost.
#  1. a real full disk: the data directory on a 2 MiB tmpfs, filled up -> ENOSPC;
#  2. (test-hook builds) the store's fault injection: the N-th commit fails with EROFS / EIO.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt

# --- 1. full disk
mkdir -p "$T/tiny"
mount -t tmpfs -o size=2m tmpfs "$T/tiny" || { fail "cannot mount a tmpfs (need root)"; finish; }
QFS_EXTRA_MNTS+=("$T/tiny")
start_fg "$T/tiny/data" "$M" || exit 1
echo before >"$M/n"
mkdir "$M/dir"
v0=$(ver "$M/n")
dd if=/dev/zero of="$T/tiny/fill" bs=4k >/dev/null 2>&1
big=$(head -c 100000 /dev/zero | tr '\0' y)
if echo "$big" 2>"$T/err" >"$M/n"; then fail "echo on a full disk must fail"; else
	check "bash echo on a full disk fails with ENOSPC" grep -q "No space left on device" "$T/err"; fi
eq "failed write kept nothing (data)" "$(cat "$M/n")" "before"
eq "failed write kept nothing (version)" "$(ver "$M/n")" "$v0"
eq "failed write kept nothing (size)" "$(stat -c %s "$M/n")" 7
rc=$(python3 -c 'import os,sys
fd=os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"z"*200000); print(0)
except OSError as e: print(e.errno)' "$M/n")
eq "write(2) of 200 kB on a full disk: ENOSPC" "$rc" 28
rm "$T/tiny/fill"
echo after >"$M/n"
eq "space freed: writes work again" "$(cat "$M/n"):$(ver "$M/n")" "after:$((v0 + 1))"
stop_pid "$PID" "$M" || fail "stop"
start_fg "$T/tiny/data" "$M" || exit 1
eq "after restart: last good value" "$(cat "$M/n")" "after"
check "after restart: directory node" test -d "$M/dir"
stop_pid "$PID" "$M" || fail "stop"

# --- 2. injected commit failures
if [[ "${QFS_HOOKS:-0}" != 1 ]]; then
	echo "skip - fault injection (not a QFS_TEST_HOOKS build)"
	finish
fi
for e in EROFS:"Read-only file system" EIO:"Input/output error" ENOSPC:"No space left on device"; do
	code=${e%%:*}
	msg=${e#*:}
	D=$T/data-$code
	# commit 1: create n, commit 2: its first write, commit 3: the write that fails
	QFS_TEST_FAULT="commit:3:$code" start_fg "$D" "$M" || exit 1
	echo one >"$M/n"
	if echo two 2>"$T/err" >"$M/n"; then fail "$code: echo must fail"; else
		check "$code on commit: bash echo fails with '$msg'" grep -q "$msg" "$T/err"; fi
	eq "$code: node unchanged" "$(cat "$M/n"):$(ver "$M/n")" "one:1"
	echo three >"$M/n"
	eq "$code: next write commits" "$(cat "$M/n"):$(ver "$M/n")" "three:2"
	stop_pid "$PID" "$M" || fail "stop"
done
finish
