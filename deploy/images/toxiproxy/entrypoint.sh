#!/bin/bash
# Writes the Toxiproxy server's proxies from the environment and runs it as
# PID 1 (so SIGTERM stops it):
#   TOXIPROXY_PORT     the HTTP API's port on 127.0.0.1 (default 8474)
#   TOXIPROXY_PROXIES  "name listen upstream", entries separated by ";",
#                      e.g. "kafka-1 127.0.0.1:9292 127.0.0.1:9192; ..."
# Every proxy starts enabled.
set -euo pipefail

port="${TOXIPROXY_PORT:-8474}"
: "${TOXIPROXY_PROXIES:?set TOXIPROXY_PROXIES: \"name listen upstream\" entries, separated by ;}"
addr='^[^: ]+:[0-9]+$'
conf=/tmp/toxiproxy.json

IFS=';' read -r -a entries <<<"$TOXIPROXY_PROXIES"
json=""
for entry in "${entries[@]}"; do
	read -r name listen upstream extra <<<"$entry" || true
	[[ -z "${name:-}" && -z "${listen:-}" ]] && continue
	if [[ ! "$name" =~ ^[A-Za-z0-9._-]+$ || ! "${listen:-}" =~ $addr || ! "${upstream:-}" =~ $addr || -n "${extra:-}" ]]; then
		echo "toxiproxy: bad entry \"$entry\" in TOXIPROXY_PROXIES: want \"name host:port host:port\"" >&2
		exit 2
	fi
	json+="${json:+,}{\"name\":\"$name\",\"listen\":\"$listen\",\"upstream\":\"$upstream\",\"enabled\":true}"
done
[[ -n "$json" ]] || { echo "toxiproxy: TOXIPROXY_PROXIES has no entry" >&2; exit 2; }
printf '[%s]\n' "$json" >"$conf"

exec /usr/local/bin/toxiproxy-server -host 127.0.0.1 -port "$port" -config "$conf"
