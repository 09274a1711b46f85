#!/usr/bin/env bash
# O_TRUNC is folded into the first write; with no write the opener's own close commits the empty
# value; a forked child closing its copy does not; truncate/ftruncate commit like a write.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

echo old >"$M/n"
v0=$(ver "$M/n")
echo new >"$M/n"
eq "echo > existing node: exactly one version (no empty intermediate)" "$(ver "$M/n")" $((v0 + 1))
v0=$(ver "$M/n")
: >"$M/n"
eq ": > node empties it" "$(stat -c %s "$M/n")" 0
eq ": > node: one version" "$(ver "$M/n")" $((v0 + 1))

echo keep >"$M/f"
cat >"$T/fork.py" <<'PY'
import os, sys
p = sys.argv[1]
v = lambda: int(os.getxattr(p, "user.zk.version"))
v0 = v()
fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
pid = os.fork()
if pid == 0:
    os.close(fd)        # the child's copy: must not commit
    os._exit(0)
os.waitpid(pid, 0)
print("child", open(p, "rb").read() == b"keep\n" and v() == v0)
fd2 = os.dup(fd)
os.close(fd)            # one of the opener's two descriptors: not its last close
print("dup", open(p, "rb").read() == b"keep\n" and v() == v0)
os.close(fd2)           # the opener's last close: commits the empty value
print("opener", open(p, "rb").read() == b"" and v() == v0 + 1)
PY
out=$(python3 "$T/fork.py" "$M/f")
eq "fork: the child's close does not commit" "$(sed -n 1p <<<"$out")" "child True"
eq "dup: closing one of two descriptors does not commit" "$(sed -n 2p <<<"$out")" "dup True"
eq "the opener's last close commits the empty value" "$(sed -n 3p <<<"$out")" "opener True"

echo keep >"$M/g"
cat >"$T/fork2.py" <<'PY'
import os, sys
p = sys.argv[1]
v0 = int(os.getxattr(p, "user.zk.version"))
fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
pid = os.fork()
if pid == 0:
    os._exit(0)         # child exits holding a copy
os.waitpid(pid, 0)
os.write(fd, b"x")      # the truncation is folded into this write
os.close(fd)
print(open(p, "rb").read() == b"x" and int(os.getxattr(p, "user.zk.version")) == v0 + 1)
PY
eq "fork then write: one version with the truncation folded in" "$(python3 "$T/fork2.py" "$M/g")" True

echo 0123456789 >"$M/t"
v0=$(ver "$M/t")
truncate -s 4 "$M/t"
eq "truncate -s 4" "$(cat "$M/t")" "0123"
eq "truncate: one version" "$(ver "$M/t")" $((v0 + 1))
truncate -s 6 "$M/t"
eq "truncate grows with zeros" "$(od -An -c "$M/t" | tr -s ' ')" " 0 1 2 3 \\0 \\0"
v0=$(ver "$M/t")
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); os.ftruncate(fd, 2); os.write(fd, b"ab"); os.close(fd)' "$M/t"
eq "ftruncate then write at the descriptor's offset" "$(cat "$M/t")" "ab"
eq "ftruncate + write: two versions" "$(ver "$M/t")" $((v0 + 2))
v0=$(ver "$M/t")
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"Z", 5); os.close(fd)' "$M/t"
eq "pwrite past the end fills with zeros" "$(od -An -c "$M/t" | tr -s ' ')" " a b \\0 \\0 \\0 Z"
eq "pwrite: one version" "$(ver "$M/t")" $((v0 + 1))
finish
