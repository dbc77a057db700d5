#!/usr/bin/env bash
# Build the container images of the real parts, on this machine, without an
# image registry:
#   bookshelf-debian:bookworm  a Debian base made with debootstrap
#   bookshelf-jre:17           OpenJDK 17 on it (apt, --network host)
#   bookshelf-kafka:<version>  Apache Kafka (KRaft) from the jars infra/up.sh fetches
#   bookshelf-consul:<version> the Consul agent infra/up.sh builds
#   bookshelf-zipkin:<version> Zipkin's server, the trace viewer, from its Maven Central jar
#   bookshelf-prometheus:debian Prometheus from Debian's package (its classic UI), on the base
#   bookshelf-toxiproxy:<version> the Toxiproxy server (go install from the
#                              Go module proxy), in front of the brokers for
#                              the books replica the chaos harness cuts off
#
# Cached: an image is built only when missing or when what it is made of
# changed (a hash of its inputs is kept as a label). The first run takes a
# few minutes (debootstrap, apt, Maven, the Consul build); later runs, a
# second or two.
#
# Environment (all optional):
#   DEBIAN_MIRROR  Debian mirror for debootstrap (default: the first of /etc/apt)
#   DEBIAN_SUITE   default bookworm
#   KAFKA_IMAGE    default bookshelf-kafka:<the version in infra/kafka/pom.xml>
#   CONSUL_IMAGE   default bookshelf-consul:1.14.8
#   ZIPKIN_IMAGE   default bookshelf-zipkin:3.5.1
#   PROMETHEUS_IMAGE default bookshelf-prometheus:debian
#   TOXIPROXY_IMAGE default bookshelf-toxiproxy:<the version in internal/toxiproxy>
#   GO             the go command (default go)
set -euo pipefail

# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKER="${DOCKER:-docker}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
BASE_IMAGE="bookshelf-debian:$DEBIAN_SUITE"
JRE_IMAGE="bookshelf-jre:17"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$INFRA_SRC/kafka/pom.xml")"
CONSUL_VERSION="$(sed -n 's:.*github.com/hashicorp/consul v\([0-9.]*\)$:\1:p' "$INFRA_SRC/consul/go.mod" | head -n1)"
KAFKA_IMAGE="${KAFKA_IMAGE:-bookshelf-kafka:$KAFKA_VERSION}"
CONSUL_IMAGE="${CONSUL_IMAGE:-bookshelf-consul:$CONSUL_VERSION}"
ZIPKIN_VERSION=3.5.1
ZIPKIN_IMAGE="${ZIPKIN_IMAGE:-bookshelf-zipkin:$ZIPKIN_VERSION}"
PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-bookshelf-prometheus:debian}"
# One place says which Toxiproxy: the Go package that runs it in its tests.
TOXIPROXY_MODULE="$(sed -n 's:^const Server = "\(.*\)"$:\1:p' "$REPO_ROOT/internal/toxiproxy/toxiproxy.go")"
TOXIPROXY_VERSION="${TOXIPROXY_MODULE##*@v}"
TOXIPROXY_IMAGE="${TOXIPROXY_IMAGE:-bookshelf-toxiproxy:$TOXIPROXY_VERSION}"
GO="${GO:-go}"
IMAGES_SRC="$REPO_ROOT/deploy/images"
STAGE="$INFRA_DIR/images"
# The legacy builder is enough for these Dockerfiles, and is there even
# where the buildx plugin is not.
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

SECONDS=0

# inputs_hash FILE...: one hash of what an image is made of.
inputs_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

# up_to_date IMAGE HASH: the image exists and was built from these inputs.
up_to_date() {
	local have
	have="$("$DOCKER" image inspect --format '{{ index .Config.Labels "org.bookshelf.inputs" }}' "$1" 2>/dev/null)" || return 1
	[[ "$have" == "$2" ]]
}

debian_mirror() {
	if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
		printf '%s\n' "$DEBIAN_MIRROR"
		return
	fi
	local m
	m="$(grep -h -o -E '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 | awk '{print $2}')" || true
	[[ -n "$m" ]] || m="$(grep -h -o -E '^deb +[^ ]+' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')" || true
	printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

build_base() {
	if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
		return 0
	fi
	command -v debootstrap >/dev/null || die "debootstrap is missing (Debian: apt-get install debootstrap); it makes the base image"
	[[ $EUID -eq 0 ]] || die "debootstrap needs root to make the base image $BASE_IMAGE"
	local root mirror
	mirror="$(debian_mirror)"
	root="$STAGE/rootfs"
	rm -rf "$root"
	mkdir -p "$STAGE"
	log "debootstrap $DEBIAN_SUITE from $mirror (about 30 s) for $BASE_IMAGE"
	debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $LOG_DIR/debootstrap.log"
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -c . | "$DOCKER" import \
		--change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
	rm -rf "$root"
}

# build IMAGE HASH CONTEXT DOCKERFILE [build args...]
build() {
	local image="$1" hash="$2" context="$3" dockerfile="$4"
	shift 4
	if up_to_date "$image" "$hash"; then
		log "$image is up to date"
		return 0
	fi
	log "building $image"
	if ! "$DOCKER" build --network host -q -f "$dockerfile" --label "org.bookshelf.inputs=$hash" \
		"$@" -t "$image" "$context" >"$LOG_DIR/image-${image//[:\/]/_}.log" 2>&1; then
		tail -n 20 "$LOG_DIR/image-${image//[:\/]/_}.log" >&2
		die "building $image failed; see $LOG_DIR/image-${image//[:\/]/_}.log"
	fi
}

# build_zipkin: the trace viewer's image, from the server's executable jar
# (one file: Maven fetches it alone, not the libraries it bundles).
build_zipkin() {
	local jar="$HOME/.m2/repository/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar"
	if [[ ! -s "$jar" ]]; then
		log "fetching zipkin-server $ZIPKIN_VERSION (130 MB) from Maven Central"
		mvn -q -B -Dstyle.color=never dependency:get -Dtransitive=false \
			-Dartifact="io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" >"$LOG_DIR/mvn-zipkin.log" 2>&1 ||
			die "Maven could not fetch zipkin-server; see $LOG_DIR/mvn-zipkin.log"
	fi
	rm -rf "$STAGE/zipkin"
	mkdir -p "$STAGE/zipkin"
	cp -l "$jar" "$STAGE/zipkin/zipkin.jar" 2>/dev/null || cp "$jar" "$STAGE/zipkin/zipkin.jar"
	build "$ZIPKIN_IMAGE" "$(inputs_hash "$IMAGES_SRC/zipkin/Dockerfile" <(sha256sum <"$jar") <(echo "$1"))" \
		"$STAGE/zipkin" "$IMAGES_SRC/zipkin/Dockerfile" --build-arg "JRE=$JRE_IMAGE" --build-arg "ZIPKIN_VERSION=$ZIPKIN_VERSION"
	rm -rf "$STAGE/zipkin"
}

# build_toxiproxy BASE_ID: the server is compiled only when the image is
# missing or stale (a static binary, from the module's own go.mod).
build_toxiproxy() {
	[[ -n "$TOXIPROXY_MODULE" ]] || die "no Toxiproxy version in internal/toxiproxy/toxiproxy.go (const Server)"
	local src="$IMAGES_SRC/toxiproxy" hash
	hash="$(inputs_hash "$src/Dockerfile" "$src/entrypoint.sh" <(echo "$TOXIPROXY_MODULE $1"))"
	if up_to_date "$TOXIPROXY_IMAGE" "$hash"; then
		log "$TOXIPROXY_IMAGE is up to date"
		return 0
	fi
	rm -rf "$STAGE/toxiproxy"
	mkdir -p "$STAGE/toxiproxy/bin"
	log "go install $TOXIPROXY_MODULE"
	(cd "$STAGE/toxiproxy" && GOBIN="$STAGE/toxiproxy/bin" CGO_ENABLED=0 GOFLAGS= \
		"$GO" install -trimpath -ldflags "-s -w" "$TOXIPROXY_MODULE") >"$LOG_DIR/toxiproxy-build.log" 2>&1 ||
		die "building the Toxiproxy server failed; see $LOG_DIR/toxiproxy-build.log"
	mv "$STAGE/toxiproxy/bin/server" "$STAGE/toxiproxy/toxiproxy-server"
	cp "$src/entrypoint.sh" "$STAGE/toxiproxy/"
	rm -rf "$STAGE/toxiproxy/bin"
	build "$TOXIPROXY_IMAGE" "$hash" "$STAGE/toxiproxy" "$src/Dockerfile" \
		--build-arg "BASE=$BASE_IMAGE" --build-arg "TOXIPROXY_VERSION=$TOXIPROXY_VERSION"
	rm -rf "$STAGE/toxiproxy"
}

main() {
	mkdir -p "$INFRA_DIR" "$LOG_DIR" "$STAGE"
	"$DOCKER" version >/dev/null 2>&1 || die "no Docker engine answers (start dockerd, see the README's Containers section)"

	# The jars and the agent, from the same caches as `make infra`.
	bash "$INFRA_SRC/up.sh" artifacts | grep -v '^infra: Kafka jars in' || true

	build_base
	local base_id
	base_id="$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_IMAGE")"

	build "$JRE_IMAGE" "$(inputs_hash "$IMAGES_SRC/jre/Dockerfile" <(echo "$base_id"))" \
		"$IMAGES_SRC/jre" "$IMAGES_SRC/jre/Dockerfile" --build-arg "BASE=$BASE_IMAGE"
	local jre_id
	jre_id="$("$DOCKER" image inspect --format '{{.Id}}' "$JRE_IMAGE")"

	# Build contexts hold only what each image needs (hard links: no copy
	# of the 100 MB of jars or the agent).
	rm -rf "$STAGE/kafka" "$STAGE/consul"
	mkdir -p "$STAGE/kafka" "$STAGE/consul"
	cp -al "$KAFKA_LIBS" "$STAGE/kafka/libs"
	rm -f "$STAGE/kafka/libs/.stamp"
	cp "$IMAGES_SRC/kafka/entrypoint.sh" "$INFRA_SRC/kafka/log4j2.properties" "$STAGE/kafka/"
	cp -l "$CONSUL_BIN" "$STAGE/consul/consul" 2>/dev/null || cp "$CONSUL_BIN" "$STAGE/consul/consul"

	build "$KAFKA_IMAGE" "$(inputs_hash "$IMAGES_SRC/kafka/Dockerfile" "$IMAGES_SRC/kafka/entrypoint.sh" \
		"$INFRA_SRC/kafka/log4j2.properties" "$KAFKA_LIBS/.stamp" <(echo "$jre_id"))" \
		"$STAGE/kafka" "$IMAGES_SRC/kafka/Dockerfile" --build-arg "JRE=$JRE_IMAGE" --build-arg "KAFKA_VERSION=$KAFKA_VERSION"
	build "$CONSUL_IMAGE" "$(inputs_hash "$IMAGES_SRC/consul/Dockerfile" "$INFRA_DIR/bin/.consul.stamp" <(echo "$base_id"))" \
		"$STAGE/consul" "$IMAGES_SRC/consul/Dockerfile" --build-arg "BASE=$BASE_IMAGE" --build-arg "CONSUL_VERSION=$CONSUL_VERSION"
	rm -rf "$STAGE/kafka" "$STAGE/consul"
	build_zipkin "$jre_id"
	build "$PROMETHEUS_IMAGE" "$(inputs_hash "$IMAGES_SRC/prometheus/Dockerfile" "$IMAGES_SRC/prometheus/prometheus.yml" \
		"$IMAGES_SRC/prometheus/entrypoint.sh" <(echo "$base_id"))" \
		"$IMAGES_SRC/prometheus" "$IMAGES_SRC/prometheus/Dockerfile" --build-arg "BASE=$BASE_IMAGE"
	build_toxiproxy "$base_id"

	"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' |
		grep -E "^(${BASE_IMAGE}|${JRE_IMAGE}|${KAFKA_IMAGE}|${CONSUL_IMAGE}|${ZIPKIN_IMAGE}|${PROMETHEUS_IMAGE}|${TOXIPROXY_IMAGE})  " | sed 's/^/infra: image /'
	log "images ready in ${SECONDS}s"
}

main "$@"
