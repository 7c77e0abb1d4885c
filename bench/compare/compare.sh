#!/bin/sh
# bench/compare/compare.sh: ferry and its peers measured side by side in one run
# (make bench-compare; docs/BENCHMARKS.md records a run and how to read it).
#
#   echo    ferryd on gnet, ferryd on netpoll, a FERRY/1 echo on bare gnet
#           (ferry-peers rawgnet) and one on net with a goroutine per connection
#           (ferry-peers net), each driven by the same ferry-bench echo command
#   echo-pipelined
#           the same four servers under ferry-peers echo-load: bare sockets,
#           DEPTH requests in flight per connection (ferry-bench's full client
#           runs out of CPU before the servers do; this load does not)
#   pubsub  ferryd on gnet and on netpoll (ferry-bench pubsub, unreliable) and
#           nats-server (ferry-peers nats-pubsub, the same scenario through nats.go)
#   idle    ferryd --heartbeat-profile iot holding IDLE_CONNS connections: server
#           memory per connection
#
# Every server starts fresh on 127.0.0.1 and a free port, pinned to core
# SERVER_CPU; every load generator is pinned to core CLIENT_CPU (taskset, when
# there is one and at least two cores). The table gives absolute figures and
# ratios to ferry-gnet.
#
# Settings (environment):
#   DURATION=10s CONNS=100 SIZE=1024 INFLIGHT=1    echo
#   DEPTH=16                                       echo-pipelined (with CONNS, SIZE)
#   PUBSUB_CONNS=1 PUBSUB_SIZE=16                  pubsub (subscribers; the publisher is one more)
#   IDLE_CONNS=18000 IDLE_SOURCES=127.0.0.1-127.0.0.4 IDLE_HOLD=$DURATION
#   ROUNDS=1        repeat echo and pubsub, contenders interleaved; the table shows medians
#   SCENARIOS="echo echo-pipelined pubsub idle"
#   QUICK=1 or CI=true: a short pass (2 s, 20 connections, 1,000 idle)
#   SERVER_CPU=0 CLIENT_CPU=1 PIN=1 (PIN=0: no taskset)
#   REPORT_MD=FILE  also write the tables as Markdown to FILE
#   KEEP=1          keep the temporary directory (binaries, logs, JSON results)
#   GO=go NATS_SERVER_VERSION=v2.15.2
set -eu

cd "$(dirname "$0")/../.."

quick=0
if [ "${QUICK:-0}" = 1 ] || [ "${CI:-}" = true ]; then
	quick=1
fi
if [ "$quick" = 1 ]; then
	DURATION=${DURATION:-2s}
	CONNS=${CONNS:-20}
	IDLE_CONNS=${IDLE_CONNS:-1000}
	IDLE_HOLD=${IDLE_HOLD:-1s}
fi
GO=${GO:-go}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-100}
SIZE=${SIZE:-1024}
INFLIGHT=${INFLIGHT:-1}
DEPTH=${DEPTH:-16}
PUBSUB_CONNS=${PUBSUB_CONNS:-1}
PUBSUB_SIZE=${PUBSUB_SIZE:-16}
IDLE_CONNS=${IDLE_CONNS:-18000}
IDLE_SOURCES=${IDLE_SOURCES:-127.0.0.1-127.0.0.4}
IDLE_HOLD=${IDLE_HOLD:-$DURATION}
ROUNDS=${ROUNDS:-1}
SCENARIOS=${SCENARIOS:-echo echo-pipelined pubsub idle}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PIN=${PIN:-1}
REPORT_MD=${REPORT_MD:-}
KEEP=${KEEP:-}
NATS_SERVER_VERSION=${NATS_SERVER_VERSION:-v2.15.2}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-compare.XXXXXX")
pids=""

cleanup() {
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	pids=""
	if [ -n "$KEEP" ]; then
		echo "compare: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "compare: $*" >&2; }

has() {
	case " $SCENARIOS " in *" $1 "*) return 0 ;; esac
	return 1
}

srv_pin=""
cli_pin=""
if [ "$PIN" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ] &&
	taskset -c "$SERVER_CPU" true 2>/dev/null && taskset -c "$CLIENT_CPU" true 2>/dev/null; then
	srv_pin="taskset -c $SERVER_CPU"
	cli_pin="taskset -c $CLIENT_CPU"
fi

# ---------------------------------------------------------------- build

log "building ferryd, ferry-bench and ferry-peers into $tmp"
"$GO" build -o "$tmp/ferryd" ./cmd/ferryd
"$GO" build -o "$tmp/ferry-bench" ./cmd/ferry-bench
"$GO" build -o "$tmp/ferry-peers" ./cmd/ferry-peers
if has pubsub; then
	log "installing nats-server@$NATS_SERVER_VERSION into $tmp"
	GOBIN="$tmp" "$GO" install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
fi

# ---------------------------------------------------------------- servers

# start NAME CMD...: start a server pinned to SERVER_CPU, its output in
# $tmp/NAME.log; sets $srv to its pid.
start() {
	name=$1
	shift
	# shellcheck disable=SC2086 # $srv_pin is a command and its arguments
	$srv_pin "$@" >"$tmp/$name.log" 2>&1 &
	srv=$!
	pids="$pids $srv"
}

# wait_for NAME SED-SCRIPT: wait until the server's log yields an address
# through SED-SCRIPT (at most 15 s); sets $addr.
wait_for() {
	i=0
	while :; do
		addr=$(sed -n "$2" "$tmp/$1.log" | head -n 1)
		[ -n "$addr" ] && return 0
		if ! kill -0 "$srv" 2>/dev/null; then
			log "$1 exited before listening:"
			cat "$tmp/$1.log" >&2
			exit 1
		fi
		i=$((i + 1))
		if [ "$i" -gt 150 ]; then
			log "$1 did not report its address in 15 s:"
			cat "$tmp/$1.log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# forget PID: drop PID from the processes the cleanup stops.
forget() {
	rest=""
	for p in $pids; do
		[ "$p" = "$1" ] || rest="$rest $p"
	done
	pids=$rest
}

# stop: SIGTERM the current server and wait for it.
stop() {
	kill -TERM "$srv" 2>/dev/null || true
	wait "$srv" 2>/dev/null || true
	forget "$srv"
}

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks
# (fields 14 and 15 of /proc/PID/stat, counted after the command name).
cpu_ticks() {
	if [ -r "/proc/$1/stat" ]; then
		sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
	else
		echo -
	fi
}
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)

cpu_seconds() {
	if [ "$1" = - ] || [ "$2" = - ]; then
		echo -
	else
		awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.2f\n", (b - a) / hz }'
	fi
}

start_ferryd() { # ENGINE [FLAGS...]
	engine=$1
	shift
	start "ferry-$engine" "$tmp/ferryd" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --engine "$engine" --drain 1s "$@"
	wait_for "ferry-$engine" 's/.*msg="ferryd ready" listen=\([^ ]*\) admin=\([^ ]*\).*/\1 \2/p'
	admin=${addr#* }
	addr=${addr% *}
}

start_peer() { # rawgnet|net
	start "$1" "$tmp/ferry-peers" "$1" --listen 127.0.0.1:0
	wait_for "$1" 's/^listening //p'
}

start_nats() {
	start nats-server "$tmp/nats-server" -a 127.0.0.1 -p -1
	wait_for nats-server 's/.*Listening for client connections on \([^ ]*\).*/\1/p'
}

# ---------------------------------------------------------------- runs

load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

manifest="$tmp/manifest"
: >"$manifest"
n=0

# measure SCENARIO CONTENDER CMD...: run a load generator pinned to
# CLIENT_CPU against the current server; its JSON result and the server's
# CPU time over the run go into the manifest.
measure() {
	scenario=$1
	contender=$2
	shift 2
	n=$((n + 1))
	out="$tmp/$n-$scenario-$contender.json"
	log "$scenario: $contender"
	c0=$(cpu_ticks "$srv")
	# In the background and waited for, so that a signal to this script
	# reaches its trap at once and the cleanup stops the load generator too.
	# shellcheck disable=SC2086
	$cli_pin "$@" >"$out" 2>"$out.err" &
	gen=$!
	pids="$pids $gen"
	if ! wait "$gen"; then
		log "$scenario against $contender failed:"
		tail -n 5 "$out.err" >&2
		: >"$out"
	fi
	forget "$gen"
	c1=$(cpu_ticks "$srv")
	echo "$scenario $contender $out $(cpu_seconds "$c0" "$c1")" >>"$manifest"
}

echo_args() {
	echo --admin= --conns "$CONNS" --size "$SIZE" --inflight "$INFLIGHT" --duration "$DURATION" --json --quiet
}

round=0
while [ "$round" -lt "$ROUNDS" ]; do
	round=$((round + 1))
	[ "$ROUNDS" -gt 1 ] && log "round $round of $ROUNDS"
	if has echo; then
		for engine in gnet netpoll; do
			start_ferryd "$engine"
			# shellcheck disable=SC2046
			measure echo "ferry-$engine" "$tmp/ferry-bench" echo --addr "$addr" $(echo_args)
			stop
		done
		for peer in rawgnet net; do
			start_peer "$peer"
			# shellcheck disable=SC2046
			measure echo "$peer" "$tmp/ferry-bench" echo --addr "$addr" $(echo_args)
			stop
		done
	fi
	if has echo-pipelined; then
		for contender in ferry-gnet ferry-netpoll rawgnet net; do
			case $contender in
			ferry-*) start_ferryd "${contender#ferry-}" ;;
			*) start_peer "$contender" ;;
			esac
			measure echo-pipelined "$contender" "$tmp/ferry-peers" echo-load --addr "$addr" \
				--conns "$CONNS" --depth "$DEPTH" --size "$SIZE" --duration "$DURATION" --json
			stop
		done
	fi
	if has pubsub; then
		for engine in gnet netpoll; do
			start_ferryd "$engine"
			measure pubsub "ferry-$engine" "$tmp/ferry-bench" pubsub --addr "$addr" --admin= \
				--conns "$PUBSUB_CONNS" --size "$PUBSUB_SIZE" --duration "$DURATION" --json --quiet
			stop
		done
		start_nats
		measure pubsub nats-server "$tmp/ferry-peers" nats-pubsub --url "nats://$addr" \
			--conns "$PUBSUB_CONNS" --size "$PUBSUB_SIZE" --duration "$DURATION" --json
		stop
	fi
done

if has idle; then
	start_ferryd gnet --heartbeat-profile iot
	measure idle ferry-gnet "$tmp/ferry-bench" idle --addr "$addr" --admin "$admin" \
		--conns "$IDLE_CONNS" --sources "$IDLE_SOURCES" --duration "$IDLE_HOLD" --json --quiet
	stop
fi

# ---------------------------------------------------------------- report

pinning="not pinned"
[ -n "$srv_pin" ] && pinning="servers on core $SERVER_CPU, load generators on core $CLIENT_CPU (taskset)"
cat <<EOF

ferry compared with its peers in one run
  machine   $(nproc 2>/dev/null || echo '?') cores, $(uname -srm), $("$GO" version | cut -d' ' -f3-)
  pinning   $pinning
  echo      ferry-bench echo --conns $CONNS --size $SIZE --inflight $INFLIGHT --duration $DURATION
  pipelined ferry-peers echo-load --conns $CONNS --depth $DEPTH --size $SIZE --duration $DURATION
  pubsub    --conns $PUBSUB_CONNS --size $PUBSUB_SIZE --duration $DURATION, unreliable; nats-server $NATS_SERVER_VERSION via nats.go
  idle      --conns $IDLE_CONNS --sources $IDLE_SOURCES --duration $IDLE_HOLD, ferryd --heartbeat-profile iot
  rounds    $ROUNDS
  load avg  $load0 before, $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?') after (other processes share the cores)

EOF
set -- --baseline ferry-gnet --target "pubsub:ferry-gnet/nats-server>=1.5" \
	--target "echo:ferry-gnet/rawgnet>=0.9" --target "echo-pipelined:ferry-gnet/rawgnet>=0.9"
"$tmp/ferry-peers" report "$@" "$manifest"
if [ -n "$REPORT_MD" ]; then
	"$tmp/ferry-peers" report --markdown "$@" "$manifest" >"$REPORT_MD"
	log "Markdown tables in $REPORT_MD"
fi
