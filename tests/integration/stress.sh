#!/usr/bin/env bash
# Everything at once for a few seconds: writers replacing a value, readers that must only ever see
# whole committed values (never a mix, never empty), creates and deletes, renames over a node,
# listings and stat reads. The daemon must survive (the suite runs under ASan/UBSan) and the
# tree must be consistent afterwards.
. "$(dirname "$0")/lib.sh"
qfs_init "$@"
M=$T/mnt
D=$T/data
start_fg "$D" "$M" || exit 1
SECS=${QFS_STRESS_SECS:-4}

cat >"$T/s.py" <<'PY'
import os, random, sys, time
M, role, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.monotonic() + secs
vals = [bytes([c]) * l for c, l in ((65, 4), (66, 3000), (67, 10), (68, 5000), (69, 1), (70, 70000))]
p = M + "/n"
n = bad = 0
if role == "w":
    while time.monotonic() < end:
        v = random.choice(vals)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        assert os.write(fd, v) == len(v)
        os.close(fd)
        n += 1
elif role == "r":
    ok = set(vals)
    while time.monotonic() < end:
        with open(p, "rb") as f:
            d = f.read()
        n += 1
        if d not in ok:
            bad += 1
            if bad < 4:
                print("bad read", len(d), d[:6], file=sys.stderr)
elif role == "c":
    os.makedirs(M + "/cd", exist_ok=True)
    while time.monotonic() < end:
        name = M + "/cd/f%d" % random.randrange(50)
        try:
            if random.random() < 0.5:
                with open(name, "w") as f:
                    f.write("x")
            else:
                os.unlink(name)
        except OSError:
            pass
        n += 1
elif role == "m":
    while time.monotonic() < end:
        with open(M + "/tmp", "w") as f:
            f.write("renamed %d" % n)
        os.rename(M + "/tmp", M + "/target")
        n += 1
elif role == "l":
    while time.monotonic() < end:
        for e in os.scandir(M + "/cd") if os.path.isdir(M + "/cd") else []:
            try:
                e.stat()
            except FileNotFoundError:
                pass
        os.getxattr(p, "user.zk.version")
        n += 1
print(role, n, bad)
PY
echo -n AAAA >"$M/n"
pids=()
for role in w w r r c m l; do
	python3 "$T/s.py" "$M" "$role" "$SECS" >"$T/out.$role.${#pids[@]}" 2>&1 &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
cat "$T"/out.* | sed 's/^/     /'
eq "all workers ran without error" "$failed" 0
rbad=$(cat "$T"/out.r.* | awk '$1 == "r" { s += $3 } END { print s + 0 }')
eq "readers only ever saw whole committed values" "$rbad" 0
check "daemon still running" kill -0 "$PID"
check "no sanitizer report" bash -c "! grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' '$D.log'"
wv=$(cat "$T"/out.w.* | awk '$1 == "w" { s += $2 } END { print s }')
eq "every write made one version" "$(ver "$M/n")" "$((wv + 1))"
check "rename target readable" grep -q '^renamed ' "$M/target"
eq "numChildren agrees with the listing" "$(zk "$M/cd" numChildren)" "$(ls "$M/cd" | wc -l)"
stop_pid "$PID" "$M" || fail "clean stop"
check "no sanitizer report at exit" bash -c "! grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' '$D.log'"
finish
