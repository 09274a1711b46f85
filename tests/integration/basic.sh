#!/usr/bin/env bash
# Basic mapping: write/read back byte for byte, one version per write, getfattr/stat agree,
# attributes are read-only, directories and .data, the control directory, name rules, touch,
# kinds of nodes that do not exist (symlink, link, device), quorumctl.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

# --- write and read back
echo hello >"$M/a"
eq "echo > new node, cat returns it" "$(cat "$M/a")" "hello"
eq "new node written once: version 1" "$(ver "$M/a")" 1
head -c 70000 /dev/urandom >"$T/bin"
python3 -c 'import os,sys; d=open(sys.argv[1],"rb").read(); fd=os.open(sys.argv[2], os.O_WRONLY|os.O_CREAT|os.O_TRUNC); assert os.write(fd,d)==len(d); os.close(fd)' "$T/bin" "$M/bin"
check "binary data (70000 random bytes, NULs included) reads back byte for byte" cmp -s "$T/bin" "$M/bin"
eq "binary data: dataLength" "$(zk "$M/bin" dataLength)" 70000
printf 'a\0b\0' >"$M/nul"
eq "NUL bytes kept" "$(od -An -c "$M/nul" | tr -s ' ')" " a \\0 b \\0"

# --- each write moves the version up by exactly one
v0=$(ver "$M/a")
for i in $(seq 1 25); do echo "value $i" >"$M/a"; done
eq "25 echos: version +25" "$(ver "$M/a")" $((v0 + 25))
eq "last value wins" "$(cat "$M/a")" "value 25"
v0=$(ver "$M/a")
echo more >>"$M/a"
eq "append: version +1" "$(ver "$M/a")" $((v0 + 1))
eq "append: content" "$(cat "$M/a")" $'value 25\nmore'

# --- stat and xattrs agree
out=$(getfattr -d --absolute-names "$M/a")
for f in version cversion aversion czxid mzxid pzxid ctime mtime ephemeralOwner dataLength numChildren; do
	grep -q "^user\.zk\.$f=\"" <<<"$out" || fail "getfattr -d lists user.zk.$f"
done
ok "getfattr -d lists the 11 stat fields"
check "zxids and ephemeralOwner in 0x hex" grep -Eq '^user\.zk\.mzxid="0x[0-9a-f]+"$' <<<"$out"
check "ephemeralOwner 0x0" grep -q '^user.zk.ephemeralOwner="0x0"$' <<<"$out"
check "version in decimal" grep -Eq '^user\.zk\.version="[0-9]+"$' <<<"$out"
eq "stat size = dataLength" "$(stat -c %s "$M/a")" "$(zk "$M/a" dataLength)"
mt=$(zk "$M/a" mtime)
eq "stat mtime = mtime (seconds)" "$(stat -c %Y "$M/a")" $((mt / 1000))
eq "stat mtime = mtime (milliseconds)" "$(stat -c %y "$M/a" | sed -E 's/.*\.([0-9]{3}).*/\1/')" "$(printf %03d $((mt % 1000)))"
eq "regular file mode" "$(stat -c %F:%a "$M/a")" "regular file:644"
eq "owner is the mount's owner" "$(stat -c %u "$M/a")" "$(id -u)"
if setfattr -n user.zk.version -v 99 "$M/a" 2>"$T/err"; then fail "setfattr user.zk.version must fail"; else
	check "setfattr user.zk.version: EPERM" grep -q "Operation not permitted" "$T/err"; fi
if setfattr -x user.zk.mtime "$M/a" 2>"$T/err"; then fail "setfattr -x must fail"; else
	check "setfattr -x user.zk.mtime: EPERM" grep -q "Operation not permitted" "$T/err"; fi
if setfattr -n user.other -v 1 "$M/a" 2>/dev/null; then fail "other xattrs cannot be stored"; else ok "setfattr user.other refused"; fi

# --- directories
mkdir "$M/dir"
check "mkdir makes a directory" test -d "$M/dir"
echo child >"$M/dir/c1"
mkdir "$M/dir/sub"
eq "ls lists children in name order" "$(ls "$M/dir" | tr '\n' ' ')" "c1 sub "
eq "numChildren" "$(zk "$M/dir" numChildren)" 2
eq "cversion counts child creations" "$(zk "$M/dir" cversion)" 2
if rmdir "$M/dir" 2>"$T/err"; then fail "rmdir of a node with children must fail"; else
	check "rmdir non-empty: ENOTEMPTY" grep -q "Directory not empty" "$T/err"; fi
echo "dir data" >"$M/dir/.data"
eq "data of a directory node through .data" "$(cat "$M/dir/.data")" "dir data"
eq "directory stat size = its dataLength" "$(stat -c %s "$M/dir")" 9
eq "getfattr on the directory: version" "$(ver "$M/dir")" 1
eq ".data shares the node's stat" "$(ver "$M/dir/.data")" 1
check ".data is not listed (rm -r keeps working)" bash -c "! ls -A '$M/dir' | grep -q '^\.data$'"
rm "$M/dir/c1"
rmdir "$M/dir/sub"
pz=$(zk "$M/dir" pzxid)
eq "deletes move pzxid" "$(zk "$M/dir" numChildren)" 0
rmdir "$M/dir"
check "rmdir of an empty directory node" test ! -e "$M/dir"
[[ "$pz" == 0x* ]] || fail "pzxid format"

# a file node that gets a child through .data? (a file cannot have children through the mount)
if mkdir "$M/a/x" 2>/dev/null; then fail "mkdir under a file node must fail"; else ok "mkdir under a file node refused"; fi

# --- control directory
check ".zk is listed at the root" bash -c "ls -A '$M' | grep -qx .zk"
st=$(cat "$M/.zk/status")
for k in id role applied; do grep -q "^$k=" <<<"$st" || fail ".zk/status has $k="; done
ok ".zk/status has id=, role=, applied="
ap=$(grep '^applied=' <<<"$st" | cut -d= -f2)
[[ $((ap)) -ge $(($(zk "$M/a" mzxid))) ]] && ok "applied >= last mzxid" || fail "applied ($ap) < mzxid"
if echo x 2>/dev/null >"$M/.zk/status"; then fail ".zk/status must not be writable"; else ok ".zk/status read-only"; fi
if mkdir "$M/.zk/x" 2>/dev/null; then fail "nothing can be created in .zk"; else ok "nothing created in .zk"; fi

# --- names
for bad in $'ctl\x01' $'del\x7f'; do
	if echo x 2>"$T/err" >"$M/$bad"; then fail "bad name created"; else
		check "control character in a name: EINVAL" grep -q "Invalid argument" "$T/err"; fi
done
if mkdir "$M/zookeeper" 2>"$T/err"; then fail "/zookeeper must be refused"; else
	check "/zookeeper at the root: EINVAL" grep -q "Invalid argument" "$T/err"; fi
mkdir "$M/d2"
if echo x >"$M/d2/.zk" 2>/dev/null && [[ -e "$M/d2/.zk" ]]; then ok ".zk allowed below the root"; else fail ".zk below the root"; fi
if mkdir "$M/.data" 2>"$T/err"; then fail ".data must be refused"; else ok ".data cannot be created"; fi
long=$(printf 'n%.0s' $(seq 1 256))
if echo x 2>/dev/null >"$M/$long"; then fail "256-byte name created"; else ok "256-byte name refused"; fi

# --- touch, kinds that do not exist
v0=$(ver "$M/a")
check "touch of an existing node succeeds" touch "$M/a"
eq "touch changes nothing" "$(ver "$M/a")" "$v0"
touch "$M/t"
eq "touch creates an empty file node" "$(zk "$M/t" dataLength):$(ver "$M/t")" "0:0"
if ln -s a "$M/sym" 2>"$T/err"; then fail "symlink must fail"; else check "symlink: EPERM" grep -q "not permitted" "$T/err"; fi
if ln "$M/a" "$M/hard" 2>"$T/err"; then fail "link must fail"; else check "hard link: EPERM" grep -q "not permitted" "$T/err"; fi
if mkfifo "$M/fifo" 2>"$T/err"; then fail "mkfifo must fail"; else check "fifo: EPERM" grep -q "not permitted" "$T/err"; fi
check "nothing half-made" bash -c "! ls -A '$M' | grep -Eq '^(sym|hard|fifo)$'"
chmod 600 "$M/a" && ok "chmod accepted (ignored)" || fail "chmod"

# --- quorumctl
check "quorumctl status" bash -c "'$QFSCTL' status '$M' | grep -q '^role='"
v0=$(ver "$M/a")
"$QFSCTL" set "$M/a" "set by quorumctl"
eq "quorumctl set: one version" "$(ver "$M/a")" $((v0 + 1))
eq "quorumctl get" "$("$QFSCTL" get "$M/a")" "set by quorumctl"
mkdir "$M/d3"
"$QFSCTL" set "$M/d3" "dirdata"
eq "quorumctl get/set on a directory node" "$("$QFSCTL" get "$M/d3")" "dirdata"
s=$("$QFSCTL" stat "$M/a")
check "quorumctl stat: zkCli lines" grep -q "^dataVersion = $((v0 + 1))$" <<<"$s"
check "quorumctl stat: cZxid" grep -Eq '^cZxid = 0x[0-9a-f]+$' <<<"$s"

# --- a node created as a file that has children (as a ZooKeeper client may make) is a directory
stop_pid "$PID" "$M" || fail "stop"
"$3" "$T/data" fileparent || fail "qfs_mktree fileparent"
start_fg "$T/data" "$M" || exit 1
check "file node with a child is shown as a directory" test -d "$M/fp"
eq "its data through .data" "$(cat "$M/fp/.data")" "parent data"
eq "its child is listed" "$(ls "$M/fp")" "child"
rm "$M/fp/child"
is_file() { [[ "$(stat -c %F "$1" 2>/dev/null)" == "regular file" ]]; }
# (the kernel learns the new kind through an asynchronous entry invalidation)
check "without children, a node created as a file is a file again" wait_for 5 is_file "$M/fp"
eq "... with its data" "$(cat "$M/fp" 2>/dev/null)" "parent data"

# --- survives a restart with the same content
stop_pid "$PID" "$M" || fail "stop"
start_fg "$T/data" "$M" || exit 1
check "binary data after restart" cmp -s "$T/bin" "$M/bin"
eq "version after restart" "$(ver "$M/a")" $((v0 + 1))
finish
