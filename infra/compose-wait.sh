#!/usr/bin/env bash
# After `docker-compose up -d`: wait until the gateway answers /readyz and
# every service has a passing instance in Consul, then say where things are.
# Reads the same variables as compose.yaml (and its .env file).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# .env as docker-compose reads it: the environment wins over it.
if [[ -f .env ]]; then
	while IFS='=' read -r name value; do
		[[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ && -z "${!name:-}" ]] && export "$name=$value"
	done <.env
fi
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
CONSUL_HTTP_PORT="${CONSUL_HTTP_PORT:-8500}"
CONSUL_DNS_PORT="${CONSUL_DNS_PORT:-8600}"
TIMEOUT="${COMPOSE_WAIT_TIMEOUT:-180}"
SECONDS=0

passing() { # passing SERVICE: how many instances pass their checks
	curl -fsS --max-time 2 "http://127.0.0.1:$CONSUL_HTTP_PORT/v1/health/service/$1?passing=1" 2>/dev/null |
		grep -o '"ServiceID"' | wc -l
}

while :; do
	missing=()
	for s in kafka books lastreadbooks booklist readingstats gateway; do
		(($(passing "$s") > 0)) || missing+=("$s")
	done
	if ((${#missing[@]} == 0)) && curl -fsS --max-time 2 "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1; then
		break
	fi
	if ((SECONDS > TIMEOUT)); then
		echo "compose: not ready after ${TIMEOUT}s; waiting for: ${missing[*]:-the gateway}" >&2
		echo "compose: see docker-compose ps and docker-compose logs <service>" >&2
		exit 1
	fi
	sleep 1
done
cat <<EOF
compose: ready in ${SECONDS}s
compose:   API        http://127.0.0.1:$GATEWAY_PORT/
compose:   Consul UI  http://127.0.0.1:$CONSUL_HTTP_PORT/ui/
compose:   replicas   dig @127.0.0.1 -p $CONSUL_DNS_PORT lastreadbooks.service.consul SRV
compose:   scale      docker-compose up -d --scale books=2 --scale lastread=3   (books-cut stays one)
compose:   stop       make down   (CLEAN=1 also removes the volumes)
EOF
