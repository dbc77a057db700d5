# The bookshelf image: one static binary, every service a subcommand
# (docker run bookshelf:dev books --help).
#
# Two ways to build the same image:
#
#   - Here, with no image registry: `make image` builds the binary on the
#     host (CGO_ENABLED=0) into bin/image/ with the host's CA certificates,
#     then builds the `prebuilt` stage, which needs nothing but scratch:
#       docker build --target prebuilt -t bookshelf:dev .
#
#   - On a machine that reaches a registry: the last stage (the default)
#     compiles in the official Go image, with BuildKit (which skips the
#     `prebuilt` stage and needs no bin/):
#       DOCKER_BUILDKIT=1 docker build -t bookshelf:dev \
#         --build-arg VERSION=$(git describe --always --dirty) \
#         --build-arg REVISION=$(git rev-parse HEAD) .
#
# Both run as an unprivileged user (65532) and carry the OCI labels.

ARG GO_IMAGE=golang:1.26-bookworm

# ---- the image from a binary built on the host (make image) --------------
FROM scratch AS prebuilt
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/bookshelf/bookshelf
COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chown=65532:65532 bin/image/tmp /tmp
COPY bin/image/bookshelf /bookshelf
LABEL org.opencontainers.image.title="bookshelf" \
      org.opencontainers.image.description="An event-driven bookshelf: small Go services on Kafka and Consul" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
USER 65532:65532
ENTRYPOINT ["/bookshelf"]
CMD ["--help"]

# ---- compiled in the Go image (a machine with a registry) ----------------
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bookshelf ./cmd/bookshelf \
 && mkdir -p /out/tmp && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/bookshelf/bookshelf
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/tmp /tmp
COPY --from=build /out/bookshelf /bookshelf
LABEL org.opencontainers.image.title="bookshelf" \
      org.opencontainers.image.description="An event-driven bookshelf: small Go services on Kafka and Consul" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
USER 65532:65532
ENTRYPOINT ["/bookshelf"]
CMD ["--help"]
