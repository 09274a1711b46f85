#!/usr/bin/env bash
# rename is one tree operation: sed -i and mv over a file replace the target's data (the target
# keeps its identity, version + 1); a directory with children answers EXDEV (mv then copies);
# RENAME_NOREPLACE is atomic, RENAME_EXCHANGE is refused.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

printf 'port=1\nhost=a\n' >"$M/config"
v0=$(ver "$M/config")
cz=$(zk "$M/config" czxid)
sed -i 's/port=1/port=2/' "$M/config"
eq "sed -i edits the node" "$(cat "$M/config")" $'port=2\nhost=a'
eq "sed -i: target version +1" "$(ver "$M/config")" $((v0 + 1))
eq "sed -i: target keeps its czxid" "$(zk "$M/config" czxid)" "$cz"
check "sed -i leaves no temporary file" bash -c "[[ \$(ls -A '$M' | grep -v '^\.zk$' | wc -l) == 1 ]]"

echo new >"$M/tmp"
v0=$(ver "$M/config")
mv "$M/tmp" "$M/config"
eq "mv tmp config: data replaced" "$(cat "$M/config")" "new"
eq "mv tmp config: version +1" "$(ver "$M/config")" $((v0 + 1))
eq "mv tmp config: czxid kept" "$(zk "$M/config" czxid)" "$cz"
check "mv: source gone" test ! -e "$M/tmp"
eq "stat after mv agrees" "$(stat -c %s "$M/config")" 4

mv "$M/config" "$M/renamed"
eq "mv to a new name" "$(cat "$M/renamed")" "new"
check "old name gone" test ! -e "$M/config"

mkdir -p "$M/d1"
echo x >"$M/d1/f"
mkdir "$M/d2"
echo y >"$M/d2/g"
mv "$M/d1/f" "$M/d2/f"
eq "mv across directories" "$(cat "$M/d2/f")" "x"
eq "source directory lost its child" "$(zk "$M/d1" numChildren)" 0

rc=$(python3 -c 'import os,sys
try:
    os.rename(sys.argv[1], sys.argv[2]); print(0)
except OSError as e: print(e.errno)' "$M/d2" "$M/d3")
eq "rename(2) of a directory with children: EXDEV" "$rc" 18
mv "$M/d2" "$M/d3" 2>"$T/mv.err" # copies; it reports EPERM for the stat attributes it cannot copy
eq "mv of a directory with children falls back to copying" "$(cat "$M/d3/g"):$(cat "$M/d3/f")" "y:x"
check "mv: copied source removed" test ! -e "$M/d2"
mkdir "$M/empty"
mv "$M/empty" "$M/moved"
check "rename of an empty directory node" test -d "$M/moved"

# renameat2 flags through ctypes
cat >"$T/r2.py" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
def r2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        return ctypes.get_errno()
    return 0
print(r2(sys.argv[1], sys.argv[2], int(sys.argv[3])))
PY
echo a >"$M/na"
echo b >"$M/nb"
eq "RENAME_NOREPLACE onto an existing node: EEXIST" "$(python3 "$T/r2.py" "$M/na" "$M/nb" 1)" 17
eq "RENAME_NOREPLACE failure changed nothing" "$(cat "$M/na"):$(cat "$M/nb")" "a:b"
eq "RENAME_NOREPLACE onto a free name" "$(python3 "$T/r2.py" "$M/na" "$M/nc" 1)" 0
eq "RENAME_NOREPLACE moved the data" "$(cat "$M/nc")" "a"
eq "RENAME_EXCHANGE: EINVAL" "$(python3 "$T/r2.py" "$M/nb" "$M/nc" 2)" 22
if mv "$M/nb" "$M/.data" 2>/dev/null; then fail "rename onto .data"; else ok "rename onto a reserved name refused"; fi
finish
