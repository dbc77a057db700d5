#!/usr/bin/env bash
# The whole bookshelf as separate processes on the real Kafka and Consul of
# `make infra`: two books, two lastread, one catalog, one stats, one
# gateway. Each finds the broker in Consul and registers there.
#
#   infra/cluster.sh up     start (idempotent: running members are kept)
#   infra/cluster.sh down   stop them all (SIGTERM: each deregisters first)
#   infra/cluster.sh status what runs, and what Consul says
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

member_pid() { find_pid "$CLUSTER_DIR/run/$1.pid" "$BIN $2 --id $1 "; }

up() {
	curl -fsS "$CONSUL_URL/v1/status/leader" >/dev/null 2>&1 ||
		die "no Consul agent at $CONSUL_URL: run 'make infra' first"
	mkdir -p "$CLUSTER_DIR/logs" "$CLUSTER_DIR/run"
	log "building bookshelf"
	(cd "$REPO_ROOT" && go build -o "$BIN" ./cmd/bookshelf)
	for m in "${MEMBERS[@]}"; do
		read -r name sub port <<<"$m"
		if pid=$(member_pid "$name" "$sub"); then
			log "$name already runs (pid $pid)"
			continue
		fi
		# No --broker: each waits for a healthy kafka in Consul.
		nohup "$BIN" "$sub" --id "$name" --addr 127.0.0.1 --port "$port" --consul "127.0.0.1:$CONSUL_HTTP_PORT" \
			>"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null &
		echo $! >"$CLUSTER_DIR/run/$name.pid"
	done
	for m in "${MEMBERS[@]}"; do
		read -r name sub port <<<"$m"
		local deadline=$((SECONDS + 60))
		until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
			member_pid "$name" "$sub" >/dev/null || die "$name exited; see $CLUSTER_DIR/logs/$name.log"
			((SECONDS < deadline)) || die "$name not ready after 60 s; see $CLUSTER_DIR/logs/$name.log"
			sleep 0.2
		done
		log "$(printf '%-10s %-8s http://127.0.0.1:%s/  ready' "$name" "$sub" "$port")"
	done
	cat <<TXT
infra: the cluster is up. Logs: $CLUSTER_DIR/logs/
  API:        http://127.0.0.1:8080/          (try: curl -s localhost:8080/books/last-read)
  Consul UI:  $CONSUL_URL/ui/
  DNS:        dig @127.0.0.1 -p $CONSUL_DNS_PORT lastreadbooks.service.consul SRV
  Stop:       make cluster-down   (or kill one member to watch the others carry on)
TXT
}

down() {
	local pids=()
	for m in "${MEMBERS[@]}"; do
		read -r name sub _ <<<"$m"
		if pid=$(member_pid "$name" "$sub"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			log "stopping $name (pid $pid)"
		fi
		rm -f "$CLUSTER_DIR/run/$name.pid"
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
	for m in "${MEMBERS[@]}"; do
		read -r name sub port <<<"$m"
		if pid=$(member_pid "$name" "$sub"); then
			log "$(printf '%-10s pid %-7s :%s' "$name" "$pid" "$port")"
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
*) die "usage: infra/cluster.sh up|down|status" ;;
esac
