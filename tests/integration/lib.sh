# Shared helpers for the integration tests. Source it, then call qfs_init "$@".
#   $1: path of the quorumfs daemon, $2: path of quorumctl (both given by CMake).
# Every daemon a test starts is recorded (PID, mount point); the EXIT/INT/TERM trap unmounts
# (fusermount3 -u, then -uz as a last resort), stops those PIDs (TERM, then KILL) and removes the
# temporary directory. Waits are polls with deadlines, never bare sleeps.
set -u

QFS=""
QFSCTL=""
T=""
QFS_PIDS=()
QFS_MNTS=()
QFS_FAILS=0

qfs_cleanup() {
	local rc=$? m p
	trap - EXIT INT TERM
	for m in "${QFS_MNTS[@]}"; do
		# (a daemon that died leaves a mount that mountpoint(1) cannot stat: use /proc/mounts)
		if in_mounts "$m"; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	for p in "${QFS_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null || continue
		kill -TERM "$p" 2>/dev/null
		wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null
	done
	for m in "${QFS_EXTRA_MNTS[@]:-}"; do
		[[ -n "$m" ]] && in_mounts "$m" && umount -l "$m" 2>/dev/null
	done
	[[ -n "$T" && -d "$T" ]] && rm -rf "$T"
	exit "$rc"
}

# in_mounts DIR: DIR is a mount point according to /proc/mounts (works for dead FUSE mounts).
in_mounts() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

qfs_init() {
	QFS=$1
	QFSCTL=${2:-}
	T=$(mktemp -d /tmp/qfs-it.XXXXXX)
	QFS_EXTRA_MNTS=()
	trap qfs_cleanup EXIT
	trap 'exit 130' INT TERM
}

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { date +%s%3N; }

# wait_for DEADLINE_S CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
	local limit=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		(($(now_ms) > limit)) && return 1
		sleep 0.02
	done
}

is_mounted() { mountpoint -q "$1"; }
not_mounted() { ! mountpoint -q "$1"; }
# gone PID: exited (a zombie counts: a detached daemon's parent is init, which may reap late).
gone() {
	kill -0 "$1" 2>/dev/null || return 0
	[[ "$(sed -E 's/.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null)" == Z ]]
}
wait_gone() { wait_for "$2" gone "$1"; }

# The PID holding the flock on DATA/LOCK (the daemon, even once detached), from /proc/locks.
lock_holder() {
	local ino
	ino=$(stat -c %i "$1/LOCK" 2>/dev/null) || return 1
	awk -v ino="$ino" '$2 == "FLOCK" { split($6, a, ":"); if (a[3] == ino) { print $5; exit } }' /proc/locks
}

# start_fg DATA MNT [ARGS...]: start a foreground daemon (log in DATA.log), wait for the mount.
# Sets PID.
start_fg() {
	local data=$1 mnt=$2
	shift 2
	mkdir -p "$data" "$mnt"
	"$QFS" -f --data "$data" "$@" "$mnt" >>"$data.log" 2>&1 &
	PID=$!
	QFS_PIDS+=("$PID")
	QFS_MNTS+=("$mnt")
	if ! wait_for 10 is_mounted "$mnt"; then
		echo "daemon did not mount $mnt; log:" >&2
		cat "$data.log" >&2
		return 1
	fi
}

# stop_pid PID MNT: SIGTERM, wait for exit and unmount.
stop_pid() {
	kill -TERM "$1"
	wait_for 10 gone "$1" || { echo "daemon $1 did not exit on SIGTERM" >&2; return 1; }
	wait_for 5 not_mounted "$2"
}

ok() { echo "ok   - $*"; }
fail() {
	echo "FAIL - $*" >&2
	QFS_FAILS=$((QFS_FAILS + 1))
}
# check DESCRIPTION CMD...: run CMD, report.
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
# eq DESCRIPTION GOT WANT
eq() {
	if [[ "$2" == "$3" ]]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
finish() {
	if ((QFS_FAILS > 0)); then
		echo "$QFS_FAILS check(s) failed" >&2
		exit 1
	fi
	echo "all checks passed"
	exit 0
}

zk() { getfattr --only-values --absolute-names -n "user.zk.$2" "$1"; }
ver() { zk "$1" version; }
