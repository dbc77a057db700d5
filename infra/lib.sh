# shellcheck shell=bash
# Shared settings and helpers for infra/up.sh and infra/down.sh.
# Sourced, not executed.
# shellcheck disable=SC2034  # variables are used by the sourcing scripts

INFRA_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$INFRA_SRC/.." && pwd)"

# Everything generated lives here (git-ignored): jars, the consul binary,
# data, logs and pid files.
INFRA_DIR="${INFRA_DIR:-$REPO_ROOT/.infra}"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
CONSUL_HTTP_PORT="${CONSUL_HTTP_PORT:-8500}"
CONSUL_DNS_PORT="${CONSUL_DNS_PORT:-8600}"

KAFKA_LIBS="$INFRA_DIR/kafka/libs"
KAFKA_DATA="$INFRA_DIR/kafka/data"
KAFKA_CONF="$INFRA_DIR/kafka/server.properties"
CONSUL_BIN="$INFRA_DIR/bin/consul"
CONSUL_DATA="$INFRA_DIR/consul/data"
LOG_DIR="$INFRA_DIR/logs"
RUN_DIR="$INFRA_DIR/run"
KAFKA_PIDFILE="$RUN_DIR/kafka.pid"
CONSUL_PIDFILE="$RUN_DIR/consul.pid"

CONSUL_URL="http://127.0.0.1:$CONSUL_HTTP_PORT"

log() { printf 'infra: %s\n' "$*"; }
die() { printf 'infra: error: %s\n' "$*" >&2; exit 1; }

# proc_matches PID NEEDLE: the process exists and its command line contains
# NEEDLE (guards against a stale pid file whose pid was reused).
proc_matches() {
	local pid="$1" needle="$2" cmdline
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
	[[ "$cmdline" == *"$needle"* ]]
}

# find_pid PIDFILE NEEDLE: print the pid of our running process, from the
# pid file or, if that is missing or stale, by scanning /proc for a command
# line containing NEEDLE (an absolute path under $INFRA_DIR, so it only
# matches processes these scripts started).
find_pid() {
	local pidfile="$1" needle="$2" pid p
	if [[ -f "$pidfile" ]]; then
		pid="$(<"$pidfile")"
		if proc_matches "$pid" "$needle"; then
			printf '%s\n' "$pid"
			return 0
		fi
	fi
	for p in /proc/[0-9]*; do
		p="${p#/proc/}"
		[[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
		if proc_matches "$p" "$needle"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

kafka_pid() { find_pid "$KAFKA_PIDFILE" "kafka.Kafka $KAFKA_CONF"; }
consul_pid() { find_pid "$CONSUL_PIDFILE" "$CONSUL_BIN agent"; }

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# port_holder PORT: who listens on PORT, for an error message ("pid 123
# (consul)", "a container of the compose stack", or "unknown").
port_holder() {
	local line
	line="$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)"
	if [[ "$line" =~ \(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
		local who="pid ${BASH_REMATCH[2]} (${BASH_REMATCH[1]})"
		if command -v docker >/dev/null 2>&1 &&
			docker ps -q --filter label=com.docker.compose.project=bookshelf 2>/dev/null | grep -q .; then
			who="$who; the compose stack is running (make down)"
		fi
		printf '%s\n' "$who"
	else
		printf 'unknown\n'
	fi
}

# stop_pid NAME PID TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
	local name="$1" pid="$2" timeout="$3" i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < timeout * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			log "stopped $name (pid $pid)"
			return 0
		}
		sleep 0.1
	done
	log "$name (pid $pid) did not stop within ${timeout}s, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	die "$name (pid $pid) survived SIGKILL"
}
