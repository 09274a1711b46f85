#!/usr/bin/env bash
# The 1 MiB limit: a single write of 1 MiB - 1 bytes (from an ordinary, unaligned buffer) arrives
# as one request and makes exactly one version; 1 MiB is EFBIG and changes nothing.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

touch "$M/big"
cat >"$T/w.py" <<'PY'
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
data = bytes((i * 7 + 3) % 251 for i in range(n))
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
try:
    w = os.write(fd, data)          # one call
    print("wrote", w)
except OSError as e:
    print("errno", e.errno)
finally:
    os.close(fd)
open(sys.argv[3], "wb").write(data)
PY
v0=$(ver "$M/big")
eq "write of 1 MiB - 1 in one call" "$(python3 "$T/w.py" "$M/big" 1048575 "$T/exp")" "wrote 1048575"
eq "1 MiB - 1: version +1 exactly" "$(ver "$M/big")" $((v0 + 1))
check "1 MiB - 1: content byte for byte" cmp -s "$T/exp" "$M/big"
eq "1 MiB - 1: dataLength" "$(zk "$M/big" dataLength)" 1048575
v1=$(ver "$M/big")
eq "write of 1 MiB: EFBIG" "$(python3 "$T/w.py" "$M/big" 1048576 "$T/exp2")" "errno 27"
eq "EFBIG changed nothing (version)" "$(ver "$M/big")" "$v1"
check "EFBIG changed nothing (content)" cmp -s "$T/exp" "$M/big"
if head -c 2000000 /dev/zero >"$M/big" 2>/dev/null; then fail "2 MB through head must fail"; else ok "2 MB in several writes: EFBIG"; fi
cmp -s "$T/exp" "$M/big" && fail "?" || true
head -c 1048575 /dev/urandom >"$T/r"
v0=$(ver "$M/big")
"$QFSCTL" set "$M/big" - <"$T/r"
eq "quorumctl set of 1 MiB - 1 from stdin: one version" "$(ver "$M/big")" $((v0 + 1))
check "quorumctl set content" cmp -s "$T/r" "$M/big"
echo x >"$M/small"
if python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"y", 1048575)' "$M/small" 2>/dev/null; then
	fail "write ending past 1 MiB - 1 must fail"
else ok "pwrite at offset 1 MiB - 1: EFBIG"; fi
eq "truncate -s 1M: EFBIG" "$(truncate -s 1M "$M/small" 2>&1 | grep -c 'too large')" 1
truncate -s 1048575 "$M/small"
eq "truncate -s 1 MiB - 1 works" "$(stat -c %s "$M/small")" 1048575
finish
