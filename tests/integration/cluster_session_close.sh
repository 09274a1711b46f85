#!/usr/bin/env bash
# The close of a session whose outcome is unknown is retried (fs__session_retry): node H holds an
# ephemeral node; the other two nodes are frozen, so the close of H's file times out (its
# outcome unknown); they are then killed (what they had not processed is lost) and restarted.
# The close is submitted again until it applies: the node disappears everywhere, while H's
# session epoch never expired (so the expiry is not what deleted it).
. "$(dirname "$0")/cluster_lib.sh"
cl_init 3 "$@"
# tick 200 ms: session timeouts up to 20 ticks = 4 s, longer than the 1 s write timeout
CL_ARGS=(--tick 200 --session-timeout 4000 --write-timeout 1000)
cl_start_all || exit 1
L=$(cl_wait_leader 30 1 2 3) || { fail "no leader"; finish; }
H=$((L % 3 + 1)) O=$(((L + 1) % 3 + 1))
ok "leader: node $L; the ephemeral is held through node $H"
exists_on() { [[ -e "$T/m$1/svc/h" ]]; }
missing_on() { [[ ! -e "$T/m$1/svc/h" ]]; }
mkdir "$T/m$H/svc"
exec 9>"$T/m$H/.zk/ephemeral/svc/h"
echo holder >&9
check "the ephemeral is seen on node $O" wait_for 10 exists_on "$O"
E0=$(cl_status "$H" session_epoch)

cl_freeze "$L" "$O" || fail "nodes $L and $O did not stop"
exec 9>&- # the close is submitted, and times out: no majority
retrying() { grep -q "closing session .* (outcome unknown: will retry)" "$T/d$H.log"; }
check "node $H's close times out and is to be retried" wait_for 20 retrying
# what the frozen nodes had received and not yet processed is lost with them
cl_kill9 "$L" || fail "kill -9 of node $L"
cl_kill9 "$O" || fail "kill -9 of node $O"
cl_start "$L" || fail "restart of node $L"
cl_start "$O" || fail "restart of node $O"
cl_wait_leader 30 1 2 3 >/dev/null || fail "no leader after the restarts"
check "the retried close deleted the ephemeral on node $O" wait_for 30 missing_on "$O"
check "... and on node $L" wait_for 10 missing_on "$L"
check "... and on node $H" wait_for 10 missing_on "$H"
eq "node $H's session epoch never expired (the close did it)" \
	"$(cl_status "$H" session_epoch)/$(cl_status "$H" sessions_expired)" "$E0/0"
grep -h "close submitted again" "$T/d$H.log" | head -n 2 | sed 's/^/     /'
finish
