#!/usr/bin/env bash
# Start the local infrastructure used by the integration tests:
#   - a Consul agent in -dev mode (HTTP 127.0.0.1:8500, DNS 127.0.0.1:8600)
#   - a single-node Apache Kafka broker in KRaft mode (127.0.0.1:19092),
#     registered in Consul as service "kafka" (id kafka-1).
#
# Idempotent: whatever already runs is kept. The first run downloads the
# Kafka jars (Maven) and builds the Consul agent (Go, a few minutes); both
# are cached under .infra/ so later runs take seconds.
#
# `infra/up.sh artifacts` only fetches the jars and builds the agent (what
# `make images` puts into the container images), and starts nothing.
#
# Environment (all optional):
#   INFRA_DIR              cache/state folder (default: <repo>/.infra)
#   KAFKA_PORT             broker port (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default 19093)
#   KAFKA_HEAP_OPTS        JVM heap flags (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 120)
#   CONSUL_HTTP_PORT       Consul HTTP port (default 8500)
#   CONSUL_DNS_PORT        Consul DNS port (default 8600)
#   CONSUL_START_TIMEOUT   seconds to wait for a Consul leader (default 60)
set -euo pipefail

# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
CONSUL_START_TIMEOUT="${CONSUL_START_TIMEOUT:-60}"

SECONDS=0

# ---------------------------------------------------------------- checks --

check_prereqs() {
	local missing=() tool
	for tool in java mvn go curl; do
		command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
	done
	if ((${#missing[@]})); then
		die "missing prerequisite(s): ${missing[*]} (need java >= 17, mvn, go, curl; Debian: openjdk-17-jdk-headless maven curl, and the Go toolchain from go.mod)"
	fi
	local ver major
	ver="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
	major="${ver%%.*}"
	[[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$ver")"
	if ! [[ "$major" =~ ^[0-9]+$ ]] || ((major < 17)); then
		die "java >= 17 is required for Kafka 4.x (found: ${ver:-unknown} at $(command -v java))"
	fi
}

# hash_of FILE...: one sha256 over the given files.
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ------------------------------------------------------------- artifacts --

fetch_kafka_jars() {
	local pom="$INFRA_SRC/kafka/pom.xml" stamp want tmp
	stamp="$KAFKA_LIBS/.stamp"
	want="$(hash_of "$pom")"
	if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
		return 0
	fi
	log "fetching Kafka jars with Maven into $KAFKA_LIBS"
	tmp="$INFRA_DIR/kafka/libs.tmp"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if ! mvn -q -B -Dstyle.color=never -f "$pom" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
		>"$LOG_DIR/mvn.log" 2>&1; then
		die "Maven could not fetch the Kafka jars; see $LOG_DIR/mvn.log"
	fi
	rm -rf "$KAFKA_LIBS"
	mv "$tmp" "$KAFKA_LIBS"
	printf '%s\n' "$want" >"$stamp"
}

CONSUL_REBUILT=0
build_consul() {
	local src="$INFRA_SRC/consul" stamp want
	stamp="$INFRA_DIR/bin/.consul.stamp"
	want="$(hash_of "$src/go.mod" "$src/go.sum" "$src/main.go")"
	if [[ -x "$CONSUL_BIN" && -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
		return 0
	fi
	log "building the Consul agent (first build takes a few minutes) into $CONSUL_BIN"
	mkdir -p "$INFRA_DIR/bin"
	if ! (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$CONSUL_BIN.tmp" .) \
		>"$LOG_DIR/consul-build.log" 2>&1; then
		die "building Consul failed; see $LOG_DIR/consul-build.log"
	fi
	mv -f "$CONSUL_BIN.tmp" "$CONSUL_BIN"
	printf '%s\n' "$want" >"$stamp"
	CONSUL_REBUILT=1
}

# launched_pid PID FINDER: the pid of a just-started daemon. Normally PID
# ($!) itself; if setsid had to fork, FINDER locates the real process.
launched_pid() {
	local pid="$1" finder="$2" i found
	for ((i = 0; i < 20; i++)); do
		if found="$("$finder")"; then
			printf '%s\n' "$found"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	printf '%s\n' "$pid"
}

# ---------------------------------------------------------------- consul --

consul_leader() {
	local leader
	leader="$(curl -fsS --max-time 2 "$CONSUL_URL/v1/status/leader" 2>/dev/null)" || return 1
	[[ -n "$leader" && "$leader" != '""' ]]
}

start_consul() {
	local pid
	if pid="$(consul_pid)"; then
		if ((CONSUL_REBUILT)); then
			log "Consul binary was rebuilt, restarting the agent"
			stop_pid consul "$pid" 15
		else
			printf '%s\n' "$pid" >"$CONSUL_PIDFILE"
			consul_leader || wait_consul "$pid"
			CONSUL_STATE="already running (pid $pid)"
			return 0
		fi
	fi
	if port_open 127.0.0.1 "$CONSUL_HTTP_PORT"; then
		die "port $CONSUL_HTTP_PORT is in use by a process not started by infra/up.sh: $(port_holder "$CONSUL_HTTP_PORT") (set CONSUL_HTTP_PORT or stop it)"
	fi
	[[ -f "$LOG_DIR/consul.log" ]] && mv -f "$LOG_DIR/consul.log" "$LOG_DIR/consul.log.1"
	# -dev keeps all state in memory; the kafka service is registered again
	# on every up.sh run.
	setsid "$CONSUL_BIN" agent -dev \
		-client 127.0.0.1 -bind 127.0.0.1 \
		-http-port "$CONSUL_HTTP_PORT" -dns-port "$CONSUL_DNS_PORT" \
		-log-level info \
		</dev/null >"$LOG_DIR/consul.log" 2>&1 9>&- &
	pid="$(launched_pid $! consul_pid)"
	printf '%s\n' "$pid" >"$CONSUL_PIDFILE"
	wait_consul "$pid"
	CONSUL_STATE="started (pid $pid)"
}

wait_consul() {
	local pid="$1" i
	for ((i = 0; i < CONSUL_START_TIMEOUT * 5; i++)); do
		consul_leader && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$LOG_DIR/consul.log" >&2 || true
			die "Consul exited during startup; see $LOG_DIR/consul.log"
		fi
		sleep 0.2
	done
	die "Consul has no leader after ${CONSUL_START_TIMEOUT}s at $CONSUL_URL; see $LOG_DIR/consul.log"
}

# ----------------------------------------------------------------- kafka --

write_kafka_config() {
	mkdir -p "$INFRA_DIR/kafka"
	cat >"$KAFKA_CONF.tmp" <<EOF
# Generated by infra/up.sh; edits are overwritten.
# Single-node KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
log.dirs=$KAFKA_DATA

# One broker: every internal topic and every write needs only one replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Topics are created explicitly by the application or the tests.
auto.create.topics.enable=false
delete.topic.enable=true

# Fast feedback for tests.
group.initial.rebalance.delay.ms=0
# The books' consumer group (KIP-848) sets its session and heartbeats as
# group configs; the broker bounds them by 45 s and 5 s at least by
# default. The bounds of a classic group's session instead: 6 s.
group.consumer.min.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=250
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
transaction.remove.expired.transaction.cleanup.interval.ms=60000
# Bounds the disk of topics created without settings of their own. The
# bookshelf creates its topics with their own retention, and refuses an
# event log that would delete events.
log.retention.hours=24
EOF
	mv -f "$KAFKA_CONF.tmp" "$KAFKA_CONF"
}

# JVM flags for the broker and the tools (KAFKA_HEAP_OPTS is a word list).
read -r -a KAFKA_JVM_OPTS <<<"$KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true"

kafka_java() {
	java "${KAFKA_JVM_OPTS[@]}" -cp "$KAFKA_LIBS/*" "$@"
}

format_kafka_storage() {
	[[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
	local cluster_id
	log "formatting Kafka storage in $KAFKA_DATA"
	mkdir -p "$KAFKA_DATA"
	cluster_id="$(kafka_java -Dlog4j2.configurationFile="$INFRA_SRC/kafka/tools-log4j2.properties" \
		kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/kafka-format.log")" ||
		die "could not generate a Kafka cluster id; see $LOG_DIR/kafka-format.log"
	if ! kafka_java -Dlog4j2.configurationFile="$INFRA_SRC/kafka/tools-log4j2.properties" \
		kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$KAFKA_CONF" \
		>>"$LOG_DIR/kafka-format.log" 2>&1; then
		die "formatting Kafka storage failed; see $LOG_DIR/kafka-format.log"
	fi
}

kafka_ready() {
	if command -v kcat >/dev/null 2>&1; then
		kcat -b "$KAFKA_HOST:$KAFKA_PORT" -L -m 2 >/dev/null 2>&1
	else
		port_open "$KAFKA_HOST" "$KAFKA_PORT" &&
			grep -q 'Kafka Server started' "$LOG_DIR/kafka.log" 2>/dev/null
	fi
}

start_kafka() {
	local pid i
	write_kafka_config
	if pid="$(kafka_pid)"; then
		printf '%s\n' "$pid" >"$KAFKA_PIDFILE"
		kafka_ready || wait_kafka "$pid"
		KAFKA_STATE="already running (pid $pid)"
		return 0
	fi
	for i in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
		if port_open "$KAFKA_HOST" "$i"; then
			die "port $i is in use by a process not started by infra/up.sh: $(port_holder "$i") (set KAFKA_PORT/KAFKA_CONTROLLER_PORT or stop it)"
		fi
	done
	format_kafka_storage
	[[ -f "$LOG_DIR/kafka.log" ]] && mv -f "$LOG_DIR/kafka.log" "$LOG_DIR/kafka.log.1"
	# The config path is the last argument: kafka_pid() finds the process by it.
	setsid java "${KAFKA_JVM_OPTS[@]}" \
		-Dlog4j2.configurationFile="$INFRA_SRC/kafka/log4j2.properties" \
		-cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" \
		</dev/null >"$LOG_DIR/kafka.log" 2>&1 9>&- &
	pid="$(launched_pid $! kafka_pid)"
	printf '%s\n' "$pid" >"$KAFKA_PIDFILE"
	wait_kafka "$pid"
	KAFKA_STATE="started (pid $pid)"
}

wait_kafka() {
	local pid="$1" i
	for ((i = 0; i < KAFKA_START_TIMEOUT * 2; i++)); do
		kafka_ready && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			grep -E 'ERROR|Exception' "$LOG_DIR/kafka.log" 2>/dev/null | tail -n 5 >&2 || true
			die "Kafka exited during startup; see $LOG_DIR/kafka.log"
		fi
		sleep 0.5
	done
	die "Kafka did not answer on $KAFKA_HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s; see $LOG_DIR/kafka.log"
}

register_kafka_in_consul() {
	local body
	body="$(
		cat <<EOF
{
  "ID": "kafka-1",
  "Name": "kafka",
  "Address": "$KAFKA_HOST",
  "Port": $KAFKA_PORT,
  "Tags": ["kraft", "plaintext"],
  "Meta": {"node_id": "1"},
  "Check": {
    "CheckID": "kafka-1-tcp",
    "Name": "Kafka broker TCP on $KAFKA_HOST:$KAFKA_PORT",
    "TCP": "$KAFKA_HOST:$KAFKA_PORT",
    "Interval": "5s",
    "Timeout": "2s",
    "Status": "passing",
    "DeregisterCriticalServiceAfter": "1m"
  }
}
EOF
	)"
	curl -fsS --max-time 5 -X PUT --data "$body" \
		"$CONSUL_URL/v1/agent/service/register" >/dev/null ||
		die "registering kafka in Consul failed ($CONSUL_URL/v1/agent/service/register)"
}

write_env_file() {
	cat >"$INFRA_DIR/env" <<EOF
# Generated by infra/up.sh: addresses of the running local infrastructure.
export KAFKA_BROKERS=$KAFKA_HOST:$KAFKA_PORT
export CONSUL_HTTP_ADDR=127.0.0.1:$CONSUL_HTTP_PORT
export CONSUL_DNS_ADDR=127.0.0.1:$CONSUL_DNS_PORT
EOF
}

# ------------------------------------------------------------------ main --

main() {
	check_prereqs
	mkdir -p "$INFRA_DIR" "$LOG_DIR" "$RUN_DIR" "$INFRA_DIR/kafka"

	# Only one up.sh/down.sh at a time.
	exec 9>"$RUN_DIR/lock"
	flock -w 600 9 || die "another infra/up.sh or infra/down.sh holds $RUN_DIR/lock"

	fetch_kafka_jars
	build_consul
	if [[ "${1:-}" == artifacts ]]; then
		log "Kafka jars in $KAFKA_LIBS, Consul agent at $CONSUL_BIN"
		return 0
	fi
	start_consul
	start_kafka
	register_kafka_in_consul
	write_env_file

	cat <<EOF
infra: Consul agent $CONSUL_STATE
infra:   HTTP  $CONSUL_URL   DNS 127.0.0.1:$CONSUL_DNS_PORT (kafka.service.consul)
infra:   log   $LOG_DIR/consul.log
infra: Kafka broker (KRaft, node 1) $KAFKA_STATE
infra:   bootstrap $KAFKA_HOST:$KAFKA_PORT   controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT
infra:   data  $KAFKA_DATA
infra:   log   $LOG_DIR/kafka.log
infra: registered Consul service kafka (id kafka-1) -> $KAFKA_HOST:$KAFKA_PORT
infra: env   source $INFRA_DIR/env   (KAFKA_BROKERS, CONSUL_HTTP_ADDR)
infra: ready in ${SECONDS}s; stop with infra/down.sh (INFRA_CLEAN=1 also wipes data)
EOF
}

main "$@"
