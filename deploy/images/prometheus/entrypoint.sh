#!/bin/sh
# Writes the gateway's address (GATEWAY_ADDR, default 127.0.0.1:8080) into
# the configuration, since Prometheus does not read the environment there,
# then runs it on PROMETHEUS_ADDR (default 127.0.0.1:9090).
set -eu
sed "s|GATEWAY_ADDR|${GATEWAY_ADDR:-127.0.0.1:8080}|" /etc/bookshelf/prometheus.yml >/tmp/prometheus.yml
exec prometheus --config.file=/tmp/prometheus.yml --storage.tsdb.path=/tmp/prometheus \
	--storage.tsdb.retention.time=1d --web.listen-address="${PROMETHEUS_ADDR:-127.0.0.1:9090}" "$@"
