#!/usr/bin/env bash
# Fault tolerance, shown: on the cluster of `make cluster`, add books
# through the gateway while one books instance is killed with kill -9 half
# way, then count what the log and the catalog hold. Every book is there
# once: none lost, none doubled.
#
#   infra/demo.sh [N]     N books (default 60)
set -euo pipefail
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-60}"
GW=http://127.0.0.1:$((8080 + ${CLUSTER_PORT_OFFSET:-0})) # as make cluster, with its offset
CLUSTER_DIR="$INFRA_DIR/cluster"
curl -fsS "$GW/readyz" >/dev/null 2>&1 || die "no gateway on $GW: run 'make infra && make cluster' first"
command -v kcat >/dev/null || die "kcat is needed to count the events (apt-get install -y kcat)"

# added_titles prints how many book-added events each of this run's titles
# has in the log, one "count title" a line.
added_titles() {
	kcat -b "$KAFKA_HOST:$KAFKA_PORT" -C -t bookshelf -e -q -f '%s\n' 2>/dev/null |
		grep '"type":"book-added"' | grep -o "\"title\":\"demo-$RUN-[0-9]*\"" | sort | uniq -c || true
}
RUN=$(date +%s)
victim=$(find_pid "$CLUSTER_DIR/run/books-1.pid" "$CLUSTER_DIR/bookshelf books --id books-1 ") ||
	die "books-1 is not running: start the cluster with 'make cluster'"

log "adding $N books through the gateway; books-1 gets kill -9 after $((N / 2))"
retries=0
start=$SECONDS
for i in $(seq 1 "$N"); do
	if ((i == N / 2 + 1)); then
		kill -9 "$victim" || die "could not kill books-1 (pid $victim)"
		log "kill -9 books-1 (pid $victim)"
	fi
	body="{\"title\":\"demo-$RUN-$i\"}"
	hdrs=$(mktemp)
	code=$(curl -s -o /dev/null -D "$hdrs" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$GW/books")
	key=$(grep -i '^idempotency-key:' "$hdrs" | cut -d' ' -f2 | tr -d '\r' || true)
	rm -f "$hdrs"
	# Told 503, retry with the key the gateway gave the command: the
	# aggregate answers a retry with the first try's outcome.
	tries=0
	while [[ "$code" == 503 && -n "$key" && $tries -lt 60 ]]; do
		retries=$((retries + 1)) tries=$((tries + 1))
		sleep 1
		code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H "Idempotency-Key: $key" -d "$body" "$GW/books")
	done
	[[ "$code" == 201 ]] || die "book $i: HTTP $code"
	if ((i % 10 == 0 || i == N)); then
		log "$(printf '%4d/%d added  (%d s, %d retries after a 503)' "$i" "$N" $((SECONDS - start)) "$retries")"
	fi
done

sleep 2
counts=$(added_titles)
titles=$(printf '%s\n' "$counts" | grep -c . || true)
doubled=$(printf '%s\n' "$counts" | awk '$1 != 1' | grep -c . || true)
log "the event log holds book-added events for $titles of this run's $N titles; $doubled of them more than once"
[[ "$titles" == "$N" && "$doubled" == 0 ]] || die "expected each of the $N books exactly once"
log "every book once: nothing lost, nothing doubled"
log "books-1 stays down; start it again with 'make cluster'"
