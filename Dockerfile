# syntax=docker/dockerfile:1
#
# Bulwark container image: a static binary on distroless, run as non-root.
#   make docker            (or: docker build -t bulwark .)
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/bulwark.yaml:/etc/bulwark/bulwark.yaml:ro" bulwark
# The config must listen on 0.0.0.0 (not 127.0.0.1) to be reachable from
# outside the container. No config is baked in: the image refuses to start
# until one is mounted at /etc/bulwark/bulwark.yaml, so a gateway never runs
# on a config nobody wrote for it.

# Build on the builder's own platform and cross-compile to the target's.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Set by BuildKit from --platform (linux/amd64, linux/arm64, ...).
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_DATE=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION} -X github.com/prometheus/common/version.Branch=${BRANCH} -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
    -o /out/bulwark ./cmd/bulwark

# distroless static: CA certificates, tzdata and /etc/passwd, no shell, no
# libc; the nonroot variant runs as UID/GID 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bulwark /bulwark
ENV BULWARK_CONFIG=/etc/bulwark/bulwark.yaml
USER nonroot:nonroot
# 8080 HTTP, 8443 HTTPS, 9901 admin (/livez /readyz /healthz /metrics).
EXPOSE 8080 8443 9901
# Exec form: the image has no shell. Checks the admin /readyz on 127.0.0.1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/bulwark", "healthcheck"]
ENTRYPOINT ["/bulwark"]
CMD ["serve"]
