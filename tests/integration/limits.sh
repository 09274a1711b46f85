#!/usr/bin/env bash
# The 1 MiB limit. A single write(2) is one request, so one version, when the kernel can hand it
# over in one piece: always up to 1,044,481 bytes (256 pages of any buffer), and up to 1 MiB - 1
# from a page-aligned buffer (what quorumctl set uses). 1 MiB is EFBIG and changes nothing.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
start_fg "$T/data" "$M" || exit 1

touch "$M/big"
cat >"$T/w.py" <<'PY'
import mmap, os, sys
path, n, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = bytes((i * 7 + 3) % 251 for i in range(n))
if how == "aligned":
    m = mmap.mmap(-1, max(n, 1))    # page-aligned
    m.write(data)
    buf = memoryview(m)[:n]
else:
    buf = bytearray(b"\0" * 17 + data)[17:]  # deliberately not page-aligned
    buf = memoryview(buf)
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
try:
    print("wrote", os.write(fd, buf))  # one call
except OSError as e:
    print("errno", e.errno)
finally:
    os.close(fd)
open(sys.argv[4], "wb").write(data)
PY
v0=$(ver "$M/big")
eq "write of 1,044,481 bytes (unaligned buffer) in one call" "$(python3 "$T/w.py" "$M/big" 1044481 unaligned "$T/exp")" "wrote 1044481"
eq "1,044,481 bytes: version +1 exactly" "$(ver "$M/big")" $((v0 + 1))
check "1,044,481 bytes: content byte for byte" cmp -s "$T/exp" "$M/big"
v0=$(ver "$M/big")
eq "write of 1 MiB - 1 (page-aligned buffer) in one call" "$(python3 "$T/w.py" "$M/big" 1048575 aligned "$T/exp")" "wrote 1048575"
eq "1 MiB - 1: version +1 exactly" "$(ver "$M/big")" $((v0 + 1))
check "1 MiB - 1: content byte for byte" cmp -s "$T/exp" "$M/big"
eq "1 MiB - 1: dataLength" "$(zk "$M/big" dataLength)" 1048575
v0=$(ver "$M/big")
python3 "$T/w.py" "$M/big" 1048575 unaligned "$T/exp" >/dev/null
check "1 MiB - 1 from an unaligned buffer: content right" cmp -s "$T/exp" "$M/big"
echo "     1 MiB - 1 from an unaligned buffer made $(($(ver "$M/big") - v0)) version(s) (the kernel splits at 256 user pages)"
v1=$(ver "$M/big")
eq "write of 1 MiB (page-aligned): EFBIG" "$(python3 "$T/w.py" "$M/big" 1048576 aligned "$T/exp2")" "errno 27"
eq "EFBIG changed nothing (version)" "$(ver "$M/big")" "$v1"
check "EFBIG changed nothing (content)" cmp -s "$T/exp" "$M/big"
if head -c 2000000 /dev/zero 2>/dev/null >"$M/big2"; then fail "2 MB through head must fail"; else ok "2 MB in several writes: EFBIG"; fi
head -c 1048575 /dev/urandom >"$T/r"
v0=$(ver "$M/big")
"$QFSCTL" set "$M/big" - <"$T/r"
eq "quorumctl set of 1 MiB - 1 from stdin: one version" "$(ver "$M/big")" $((v0 + 1))
check "quorumctl set content" cmp -s "$T/r" "$M/big"
head -c 1048576 /dev/zero >"$T/r2"
if "$QFSCTL" set "$M/big" - <"$T/r2" 2>/dev/null; then fail "quorumctl set of 1 MiB must fail"; else ok "quorumctl set of 1 MiB refused"; fi
check "still the last good value" cmp -s "$T/r" "$M/big"
echo x >"$M/small"
if python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"y", 1048575)' "$M/small" 2>/dev/null; then
	fail "write ending past 1 MiB - 1 must fail"
else ok "pwrite at offset 1 MiB - 1: EFBIG"; fi
eq "truncate -s 1M: EFBIG" "$(truncate -s 1M "$M/small" 2>&1 | grep -c 'too large')" 1
truncate -s 1048575 "$M/small"
eq "truncate -s 1 MiB - 1 works" "$(stat -c %s "$M/small")" 1048575
finish
