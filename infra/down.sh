#!/usr/bin/env bash
# Stop the local infrastructure started by infra/up.sh: Kafka first, then
# Consul (SIGTERM, then SIGKILL after a timeout). Safe to run when nothing
# is running.
#
#   infra/down.sh            stop, keep data
#   infra/down.sh --clean    stop and wipe Kafka/Consul data (same as INFRA_CLEAN=1)
#
# The jar and binary caches (.infra/kafka/libs, .infra/bin) are always kept.
set -euo pipefail

# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
CONSUL_STOP_TIMEOUT="${CONSUL_STOP_TIMEOUT:-15}"
INFRA_CLEAN="${INFRA_CLEAN:-0}"

for arg in "$@"; do
	case "$arg" in
	--clean) INFRA_CLEAN=1 ;;
	-h | --help)
		sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $arg (try --help)" ;;
	esac
done

if [[ ! -d "$INFRA_DIR" ]]; then
	log "nothing to stop ($INFRA_DIR does not exist)"
	exit 0
fi

mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/lock"
flock -w 600 9 || die "another infra/up.sh or infra/down.sh holds $RUN_DIR/lock"

if pid="$(kafka_pid)"; then
	stop_pid kafka "$pid" "$KAFKA_STOP_TIMEOUT"
else
	log "kafka is not running"
fi
rm -f "$KAFKA_PIDFILE"

if pid="$(consul_pid)"; then
	stop_pid consul "$pid" "$CONSUL_STOP_TIMEOUT"
else
	log "consul is not running"
fi
rm -f "$CONSUL_PIDFILE"

if [[ "$INFRA_CLEAN" == 1 ]]; then
	rm -rf "$KAFKA_DATA" "$CONSUL_DATA" "$INFRA_DIR/kafka/server.properties" "$INFRA_DIR/env"
	log "wiped data: $KAFKA_DATA $CONSUL_DATA"
fi
