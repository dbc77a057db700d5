#!/bin/bash
# Writes server.properties from the environment, formats the storage on
# first start, and runs the broker as PID 1 (so SIGTERM is a controlled
# shutdown). The names follow the official apache/kafka image: every
# KAFKA_<NAME> becomes a property, lower case, "_" -> ".", "__" -> "_",
# "___" -> "-"; CLUSTER_ID is the KRaft cluster id.
set -euo pipefail

conf=/opt/kafka/config/server.properties
: "${CLUSTER_ID:?set CLUSTER_ID: the KRaft cluster id, the same on every node (22 characters of base64)}"
: "${KAFKA_NODE_ID:?set KAFKA_NODE_ID}"
: "${KAFKA_PROCESS_ROLES:?set KAFKA_PROCESS_ROLES (broker,controller)}"

{
	echo "# Written by /opt/kafka/entrypoint.sh from the environment."
	while IFS='=' read -r -d '' name value; do
		case "$name" in
		KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | KAFKA_VERSION) continue ;;
		KAFKA_*) ;;
		*) continue ;;
		esac
		key="${name#KAFKA_}"
		key="${key,,}"
		key="${key//___/-}"
		key="${key//__/@}"
		key="${key//_/.}"
		key="${key//@/_}"
		printf '%s=%s\n' "$key" "$value"
	done < <(env -0)
	grep -q '^KAFKA_LOG_DIRS=' < <(env) || echo "log.dirs=/var/lib/kafka/data"
} >"$conf"

read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
read -r -a perf <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true}"
read -r -a extra <<<"${KAFKA_OPTS:-}"
java=(java "${heap[@]}" "${perf[@]}" "${extra[@]}" -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp '/opt/kafka/libs/*')

# Formatting is once per data folder. A restart skips it: the tool is a
# JVM of its own, seconds of a restart on a busy machine.
logdir=$(sed -n 's/^log\.dirs=//p' "$conf" | cut -d, -f1)
if [[ ! -f "$logdir/meta.properties" ]]; then
	"${java[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$conf" >/dev/null
fi

exec "${java[@]}" kafka.Kafka "$conf"
