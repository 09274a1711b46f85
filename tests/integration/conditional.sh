#!/usr/bin/env bash
# Conditional writes and deletes: user.zk.expect_version set on a descriptor (fsetxattr) or a path
# makes that process's next write/unlink of the node conditional; a stale version fails with
# ESTALE and changes nothing. quorumctl set -v / rm -v print the expected and actual version.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

printf "" >"$M/n"
echo v1 >"$M/n"
eq "node at version 1" "$(ver "$M/n")" 1

# --- on a descriptor, from Python (fsetxattr then write)
cat >"$T/cw.py" <<'PY'
import errno, os, sys
path, version, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
os.setxattr(fd, "user.zk.expect_version", version.encode())
try:
    os.write(fd, data)
    print("written")
except OSError as e:
    print(errno.errorcode[e.errno])
# the condition is one-shot: the next write is unconditional
if len(sys.argv) > 4:
    os.write(fd, sys.argv[4].encode())
    print("second written")
os.close(fd)
PY
eq "fsetxattr stale version: write fails with ESTALE" "$(python3 "$T/cw.py" "$M/n" 0 stale)" ESTALE
eq "... nothing changed (data)" "$(cat "$M/n")" v1
eq "... nothing changed (version)" "$(ver "$M/n")" 1
eq "fsetxattr right version: write succeeds" "$(python3 "$T/cw.py" "$M/n" 1 fresh)" written
eq "... data" "$(cat "$M/n")" fresh
eq "... version 2" "$(ver "$M/n")" 2
out=$(python3 "$T/cw.py" "$M/n" 0 stale again | tr '\n' ' ')
eq "one-shot: after a failed conditional write the next write is unconditional" "$out" "ESTALE second written "
eq "... its data" "$(cat "$M/n")" again
eq "... version 3" "$(ver "$M/n")" 3

# --- with setfattr on the path, then a shell redirection in the SAME process (bash builtin exec)
out=$(bash -c "setfattr -n user.zk.expect_version -v 3 '$M/n' && echo x >'$M/n'" 2>&1)
# setfattr ran as another process: the expectation belongs to setfattr, not to bash
eq "expectations belong to the process that set them" "$(ver "$M/n")" 4

# --- quorumctl set -v
if "$QFSCTL" set -v 1 "$M/n" nope 2>"$T/err"; then fail "set -v stale must exit non-zero"; else
	eq "set -v stale: exit status 1" "$?" 1
	check "set -v stale: message names expected and actual" grep -q "version mismatch: expected 1, actual 4" "$T/err"
fi
eq "set -v stale: data unchanged" "$(cat "$M/n")" x
eq "set -v stale: version unchanged" "$(ver "$M/n")" 4
check "set -v right version" "$QFSCTL" set -v 4 "$M/n" yes
eq "set -v: data" "$(cat "$M/n")" yes
eq "set -v: one version" "$(ver "$M/n")" 5
mkdir "$M/d"
check "set -v on a directory node (.data)" "$QFSCTL" set -v 0 "$M/d" dd
eq "directory node data" "$(cat "$M/d/.data")" dd

# --- concurrent compare-and-set increments: no lost update
echo 0 >"$M/counter"
incr() {
	local i v c
	for i in $(seq 1 20); do
		while :; do
			v=$(ver "$M/counter")
			c=$(cat "$M/counter")
			"$QFSCTL" set -v "$v" "$M/counter" $((c + 1)) 2>/dev/null && break
		done
	done
}
incr & p1=$!
incr & p2=$!
incr & p3=$!
wait $p1 $p2 $p3
eq "three CAS loops of 20 increments: counter 60" "$(cat "$M/counter")" 60
eq "... and exactly 60 versions" "$(ver "$M/counter")" 61

# --- quorumctl rm -v
printf "" >"$M/r"
echo b >"$M/r"
if "$QFSCTL" rm -v 0 "$M/r" 2>"$T/err"; then fail "rm -v stale must fail"; else
	check "rm -v stale: message" grep -q "version mismatch: expected 0, actual 1" "$T/err"
fi
check "rm -v stale: node still there" test -e "$M/r"
check "rm -v right version" "$QFSCTL" rm -v 1 "$M/r"
check "rm -v: node gone" test ! -e "$M/r"
mkdir "$M/e"
check "rm -v on an empty directory node" "$QFSCTL" rm -v 0 "$M/e"
check "rm: gone" test ! -e "$M/e"
echo z >"$M/z"
check "rm without -v" "$QFSCTL" rm "$M/z"
check "rm: gone" test ! -e "$M/z"

# --- errors and clearing
if setfattr -n user.zk.expect_version -v abc "$M/n" 2>/dev/null; then fail "bad version accepted"; else ok "setfattr expect_version abc: EINVAL"; fi
check "setfattr expect_version -1 (any) accepted" setfattr -n user.zk.expect_version -v -1 "$M/n"
check "setfattr -x user.zk.expect_version clears" setfattr -x user.zk.expect_version "$M/n"
if setfattr -n user.zk.version -v 1 "$M/n" 2>/dev/null; then fail "stat still read-only"; else ok "other user.zk attributes stay read-only"; fi
if "$QFSCTL" set -v x "$M/n" v 2>/dev/null; then fail "bad -v"; else eq "set -v x: usage error (2)" "$?" 2; fi
check "quorumctl set --help" bash -c "'$QFSCTL' set --help | grep -q 'set \[-v VERSION\]'"
finish
