#!/usr/bin/env bash
# The whole bookshelf as separate processes on the real Kafka and Consul of
# `make infra`: two books, two lastread, one catalog, one stats, one
# gateway. Each finds the broker in Consul and registers there.
#
#   infra/cluster.sh up          start (idempotent: running members are kept)
#   infra/cluster.sh down        stop them all (SIGTERM: each deregisters first)
#   infra/cluster.sh status      what runs, and what Consul says
#   infra/cluster.sh start NAME  start one member again (after a kill -9), or
#                                books-3, a third books for a while; no build
#   infra/cluster.sh stop NAME   SIGTERM one member and wait until it is gone
#
# CLUSTER_PORT_OFFSET (default 0) is added to every member's port, so that
# the cluster can run beside something else on 8080-8088: with 20000 the
# gateway answers on 28080. Each member's port is in run/NAME.port.
set -euo pipefail
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER_DIR="$INFRA_DIR/cluster"
BIN="$CLUSTER_DIR/bookshelf"
# name subcommand port
MEMBERS=(
	"books-1 books 8081"
	"books-2 books 8082"
	"lastread-1 lastread 8087"
	"lastread-2 lastread 8088"
	"catalog-1 catalog 8084"
	"stats-1 stats 8085"
	"gateway-1 gateway 8080"
)
# Members `up` does not start: `start books-3` scales books 2 -> 3.
EXTRA=(
	"books-3 books 8083"
)
OFFSET="${CLUSTER_PORT_OFFSET:-0}"
[[ "$OFFSET" =~ ^[0-9]+$ ]] && ((8088 + OFFSET <= 65535)) ||
	die "CLUSTER_PORT_OFFSET=$OFFSET: want a whole number that keeps the ports below 65536"

member_pid() { find_pid "$CLUSTER_DIR/run/$1.pid" "$BIN $2 --id $1 "; }

# member NAME: print "name subcommand port" of a member, the offset added.
member() {
	local m name sub port
	for m in "${MEMBERS[@]}" "${EXTRA[@]}"; do
		read -r name sub port <<<"$m"
		if [[ "$name" == "$1" ]]; then
			printf '%s %s %s\n' "$name" "$sub" $((port + OFFSET))
			return 0
		fi
	done
	return 1
}

need_consul() {
	curl -fsS "$CONSUL_URL/v1/status/leader" >/dev/null 2>&1 ||
		die "no Consul agent at $CONSUL_URL: run 'make infra' first"
}

# start_member NAME SUB PORT: start it unless it runs.
start_member() {
	local name="$1" sub="$2" port="$3" pid
	if pid=$(member_pid "$name" "$sub"); then
		log "$name already runs (pid $pid)"
		return 0
	fi
	port_open 127.0.0.1 "$port" && die "port $port of $name is taken by another process (set CLUSTER_PORT_OFFSET)"
	# No --broker: each waits for a healthy kafka in Consul.
	nohup "$BIN" "$sub" --id "$name" --addr 127.0.0.1 --port "$port" --consul "127.0.0.1:$CONSUL_HTTP_PORT" \
		>>"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$CLUSTER_DIR/run/$name.pid"
	echo "$port" >"$CLUSTER_DIR/run/$name.port"
}

# wait_member NAME SUB PORT: until it answers /readyz, 60 s at most.
wait_member() {
	local name="$1" sub="$2" port="$3" deadline=$((SECONDS + 60))
	until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
		member_pid "$name" "$sub" >/dev/null || die "$name exited; see $CLUSTER_DIR/logs/$name.log"
		((SECONDS < deadline)) || die "$name not ready after 60 s; see $CLUSTER_DIR/logs/$name.log"
		sleep 0.2
	done
	log "$(printf '%-10s %-8s http://127.0.0.1:%s/  ready' "$name" "$sub" "$port")"
}

up() {
	need_consul
	mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/run"
	log "building bookshelf"
	(cd "$REPO_ROOT" && go build -o "$BIN" ./cmd/bookshelf)
	local m name sub port
	for m in "${MEMBERS[@]}"; do
		read -r name sub port <<<"$m"
		start_member "$name" "$sub" $((port + OFFSET))
	done
	for m in "${MEMBERS[@]}"; do
		read -r name sub port <<<"$m"
		wait_member "$name" "$sub" $((port + OFFSET))
	done
	local api=$((8080 + OFFSET))
	cat <<TXT
infra: the cluster is up. Logs: $CLUSTER_DIR/logs/
  API:        http://127.0.0.1:$api/          (try: curl -s localhost:$api/books/last-read)
  Consul UI:  $CONSUL_URL/ui/
  DNS:        dig @127.0.0.1 -p $CONSUL_DNS_PORT lastreadbooks.service.consul SRV
  Stop:       make cluster-down   (or kill one member to watch the others carry on)
TXT
}

# start NAME: one member, with the binary `up` built.
start_one() {
	local m name sub port
	m=$(member "$1") || die "no member $1 in the cluster"
	read -r name sub port <<<"$m"
	[[ -x "$BIN" ]] || die "no $BIN: run 'make cluster' first"
	need_consul
	mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/run"
	start_member "$name" "$sub" "$port"
	wait_member "$name" "$sub" "$port"
}

# stop_member NAME SUB: SIGTERM (it deregisters first), SIGKILL after 30 s.
stop_member() {
	local pid
	if pid=$(member_pid "$1" "$2"); then
		log "stopping $1 (pid $pid)"
		stop_pid "$1" "$pid" 30
	fi
	rm -f "$CLUSTER_DIR/run/$1.pid" "$CLUSTER_DIR/run/$1.port"
}

stop_one() {
	local m name sub
	m=$(member "$1") || die "no member $1 in the cluster"
	read -r name sub _ <<<"$m"
	stop_member "$name" "$sub"
}

down() {
	local pids=() m name sub pid
	for m in "${MEMBERS[@]}" "${EXTRA[@]}"; do
		read -r name sub _ <<<"$m"
		if pid=$(member_pid "$name" "$sub"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			log "stopping $name (pid $pid)"
		fi
		rm -f "$CLUSTER_DIR/run/$name.pid" "$CLUSTER_DIR/run/$name.port"
	done
	local deadline=$((SECONDS + 30))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null; do
			if ((SECONDS >= deadline)); then
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.2
		done
	done
	log "cluster stopped"
}

status() {
	local m name sub port pid
	for m in "${MEMBERS[@]}" "${EXTRA[@]}"; do
		read -r name sub port <<<"$m"
		if pid=$(member_pid "$name" "$sub"); then
			log "$(printf '%-10s pid %-7s :%s' "$name" "$pid" $((port + OFFSET)))"
		else
			log "$(printf '%-10s not running' "$name")"
		fi
	done
	for s in books lastreadbooks booklist readingstats gateway kafka; do
		n=$(curl -fsS "$CONSUL_URL/v1/health/service/$s?passing" 2>/dev/null | grep -oE '"Node": *\{' | wc -l || true)
		log "consul: $s has $n passing instance(s)"
	done
}

case "${1:-up}" in
up) up ;;
down) down ;;
status) status ;;
start) start_one "${2:?usage: infra/cluster.sh start NAME}" ;;
stop) stop_one "${2:?usage: infra/cluster.sh stop NAME}" ;;
*) die "usage: infra/cluster.sh up|down|status|start NAME|stop NAME" ;;
esac
