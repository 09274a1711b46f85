#!/usr/bin/env bash
# tools/perf/cpu.sh [BUILD=build-rel] [SECONDS=10]: the machine's CPU time per write, quorumfs and
# Apache ZooKeeper, under the write-throughput load of tools/bench (48 synchronous writers over
# three quorumfs mounts; ZooKeeper's C client, 8 clients with 32 requests outstanding each).
# Counts every CPU's busy time (/proc/stat: user, nice, system, irq, softirq) over the measured
# window: servers, kernel (FUSE, TCP, the file systems) and the load generator together, for
# both; and the servers' own share (their processes' user + system time; the rest is the load
# generator, the kernel's FUSE and TCP work done in its context, and interrupts). Needs a Release
# build with the bench tools (cmake -DCMAKE_BUILD_TYPE=Release) and the zookeeper package
# (tools/deps). Everything it starts is stopped by PID (cluster.sh stop for the
# mounts, zk-ensemble stop for ZooKeeper), also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-rel} secs=${2:-10}
bin=$build/bin
D=$(mktemp -d /tmp/qfs-cpu.XXXXXX)
port=${QFS_CPU_PORT:-17800}
zk_started=0
cleanup() {
	QFS_PERF_PORT=$port tools/perf/cluster.sh stop "$build" "$D/q" 2>/dev/null || true
	((zk_started)) && tools/bench/zk-ensemble stop "$D/zk" >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# CPU ticks (user + system) of the processes PIDS
ticks() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + v))
	done
	echo "$t"
}
# context switches (voluntary + involuntary) of every thread of the processes PIDS
switches() {
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null || true; done |
		awk '/ctxt_switches/ {n += $2} END {print n + 0}'
}
# measure NAME "SERVER PIDS" CMD...: runs the load CMD (no warm-up of its own), prints ops, the
# machine's CPU-seconds and µs per write, and the servers' share of it
measure() {
	local name=$1 pids=$2 b0 b1 s0 s1 x0 x1 out ops
	shift 2
	b0=$(busy)
	s0=$(ticks $pids)
	x0=$(switches $pids)
	out=$("$@")
	b1=$(busy)
	s1=$(ticks $pids)
	x1=$(switches $pids)
	ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$out")
	awk -v n="$name" -v o="$ops" -v c=$((b1 - b0)) -v sv=$((s1 - s0)) -v x=$((x1 - x0)) -v hz="$hz" -v s="$secs" 'BEGIN {
		printf "%-10s writes=%d writes_per_s=%.0f cpu_s=%.2f (of %d available) cpu_us_per_write=%.1f servers_us_per_write=%.1f rest_us_per_write=%.1f server_switches_per_write=%.1f\n",
			n, o, o / s, c / hz, 2 * s, c / hz * 1e6 / o, sv / hz * 1e6 / o, (c - sv) / hz * 1e6 / o, x / o }'
}

QFS_PERF_PORT=$port tools/perf/cluster.sh start "$build" "$D/q" >/dev/null
M="$D/q/m1,$D/q/m2,$D/q/m3"
zkc=$(tools/bench/zk-ensemble start "$D/zk" 3 $((port + 10)))
zk_started=1
# warm both up (ZooKeeper's JVMs need it most), then measure each alone
"$bin/qfsload" --mounts "$M" --workload write --clients 48 --seconds 5 --warmup 0 >/dev/null
"$bin/zkload" --servers "$zkc" --workload write --clients 8 --outstanding 32 --seconds 10 --warmup 0 >/dev/null
sleep 2
qpids=""
for f in $(grep -laF -- "$D/q/m" /proc/[0-9]*/cmdline 2>/dev/null || true); do
	p=${f#/proc/}; p=${p%/cmdline}
	[[ $(readlink "/proc/$p/exe" 2>/dev/null) == */quorumfs ]] && qpids+="$p "
done
zpids="$(cat "$D"/zk/pid* | tr '\n' ' ')"
measure quorumfs "$qpids" "$bin/qfsload" --mounts "$M" --workload write --clients 48 --seconds "$secs" --warmup 0
sleep 2
measure zookeeper "$zpids" "$bin/zkload" --servers "$zkc" --workload write --clients 8 --outstanding 32 --seconds "$secs" --warmup 0
