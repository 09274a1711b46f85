#!/usr/bin/env bash
# quorumctl multi / .zk/multi: a list of operations applied all or nothing (ZooKeeper's multi).
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

out=$(printf 'create -d /app\ncreate /app/a hello world\ncreate -s /app/job- x\nset /app/a bye\ncheck -v 1 /app/a\n' | "$QFSCTL" multi "$M")
eq "a multi of five ops: one result line each" "$out" "$(printf 'ok create /app 0\nok create /app/a 0\nok create /app/job-0000000001 0\nok set /app/a 1\nok check /app/a 1')"
eq "... applied" "$(cat "$M/app/a")" bye
check "... the directory node" test -d "$M/app"
z1=$(zk "$M/app/a" mzxid)
z2=$(zk "$M/app/job-0000000001" czxid)
eq "... in one transaction (one zxid)" "$z1" "$z2"

before=$(getfattr -d --absolute-names -R "$M/app" 2>/dev/null; cat "$M/app/a")
if printf 'set /app/a changed\ncreate /app/new x\ndelete -v 7 /app/a\n' | "$QFSCTL" multi "$M" >"$T/o" 2>"$T/e"; then fail "a multi with a stale version must fail"; else
	eq "a failing multi: exit status 1" "$?" 1
	check "... names the failing op and its errno" grep -q "^error ESTALE delete /app/a$" "$T/e"
	check "... the others rolled back" grep -q "^error - set /app/a$" "$T/e"
fi
eq "... nothing applied" "$(getfattr -d --absolute-names -R "$M/app" 2>/dev/null; cat "$M/app/a")" "$before"
check "... no new node" test ! -e "$M/app/new"

if printf 'frobnicate /x\n' | "$QFSCTL" multi "$M" 2>"$T/e"; then fail "malformed request"; else
	check "a malformed request: EINVAL" grep -q "Invalid argument" "$T/e"; fi
check "check -v without a version is malformed" bash -c "! printf 'check /app/a\n' | '$QFSCTL' multi '$M' 2>/dev/null"
out=$(printf 'delete /app/a\ndelete /app/job-0000000001\ndelete /app\n' | "$QFSCTL" multi "$M")
check "deletes in order, parent last" test ! -e "$M/app"

# through the control file from Python: write the request, read the results on the same descriptor
python3 - "$M" >"$T/py" <<'PY'
import os, sys
fd = os.open(sys.argv[1] + "/.zk/multi", os.O_RDWR)
os.write(fd, b"create /p one\nset /p two\n")
print(os.read(fd, 4096).decode(), end="")
try:
    os.write(fd, b"create /p again\n")
except OSError as e:
    print("errno", e.errno)
print(os.read(fd, 4096).decode(), end="")
PY
eq ".zk/multi from a program" "$(cat "$T/py")" "$(printf 'ok create /p 0\nok set /p 1\nerrno 17\nerror EEXIST create /p')"
# -x: escaped data (newlines, backslashes, NUL, \xHH)
printf 'create -x /esc a\\nb\\\\c\\x41\\0z\nset -x /esc2 x\n' >"$T/req" # /esc2 does not exist
if "$QFSCTL" multi "$M" <"$T/req" >/dev/null 2>&1; then fail "a multi with a missing node must fail"; fi
check "... and created nothing" test ! -e "$M/esc"
printf 'create -x /esc a\\nb\\\\c\\x41\\0z\n' | "$QFSCTL" multi "$M" >/dev/null || fail "create -x"
eq "create -x: the data holds a newline, a backslash, 'A' and a NUL" "$(od -An -c "$M/esc" | tr -s ' ')" "$(printf 'a\nb\\cA\0z' | od -An -c | tr -s ' ')"
printf 'set -x /esc one\\ntwo\n' | "$QFSCTL" multi "$M" >/dev/null || fail "set -x"
eq "set -x" "$(cat "$M/esc")" "$(printf 'one\ntwo')"
for bad in 'set -x /esc a\q' 'set -x /esc trailing\' 'set -x /esc \x4' 'set -x /esc \xzz'; do
	if printf '%s\n' "$bad" | "$QFSCTL" multi "$M" 2>/dev/null; then fail "bad escape accepted: $bad"; else ok "bad escape refused: $bad"; fi
done
eq "... nothing changed" "$(cat "$M/esc")" "$(printf 'one\ntwo')"

# create -e: ephemeral nodes owned by the session of the .zk/multi descriptor
mkdir "$M/svc"
exec 7<>"$M/.zk/multi"
printf 'create -e /svc/a A\ncreate -e -s /svc/q- Q\ncreate /svc/persist P\n' >&7
check "create -e in a multi: the ephemerals exist while the descriptor is open" test -e "$M/svc/a" -a -e "$M/svc/q-0000000001"
owner=$(zk "$M/svc/a" ephemeralOwner)
eq "... both owned by one session" "$(zk "$M/svc/q-0000000001" ephemeralOwner)" "$owner"
check "... a real session id" test "$owner" != 0x0
printf 'create -e /svc/b B\n' >&7
eq "... a later multi on the same descriptor uses the same session" "$(zk "$M/svc/b" ephemeralOwner)" "$owner"
exec 7>&-
gone_all() { [[ ! -e "$M/svc/a" && ! -e "$M/svc/b" && ! -e "$M/svc/q-0000000001" ]]; }
check "closing the descriptor deletes its ephemerals" wait_for 10 gone_all
check "... and keeps the persistent node" test -e "$M/svc/persist"
if printf 'create -e /svc/a A\ncreate /svc/a/child x\n' | "$QFSCTL" multi "$M" 2>/dev/null; then fail "a child of an ephemeral in a multi"; else ok "a child of an ephemeral created in the same multi is refused"; fi
check "... nothing created" test ! -e "$M/svc/a"
finish
