# syntax=docker/dockerfile:1
#
# Dionysia node image: dionysia + mediamtx + ffmpeg.
#
#   docker build -t dionysia .
#   docker run --rm --init -p 8080:8080 -p 1935:1935 -p 8554:8554 -p 8890:8890/udp dionysia
#
# Three joined nodes: docker compose up (docker-compose.yml).

# ---- mediamtx and hls.js: the steps of scripts/deps.sh, pinned to the same versions.
# A stage of its own, so that changing Dionysia's code does not rebuild mediamtx.
FROM golang:1.26-bookworm AS mediamtx
# Keep in step with scripts/deps.sh (docs/docker_test.go checks it).
ARG MEDIAMTX_VERSION=v1.15.3
ARG MEDIAMTX_HLSJS_VERSION=1.6.13
ARG HLSJS_VERSION=1.6.17
WORKDIR /build
# hls.js: the npm registry's tarballs (what `npm pack` fetches, without installing npm).
# mediamtx embeds the version it pins; the dashboard's preview player loads a newer one
# (1.6.17 fixes a discontinuity at a preload hint, where low-latency seams land).
RUN set -eux; \
    mkdir -p /out mtx; \
    curl -fsSL -o hls.tgz "https://registry.npmjs.org/hls.js/-/hls.js-${HLSJS_VERSION}.tgz"; \
    tar -xzf hls.tgz package/dist/hls.min.js; \
    cp package/dist/hls.min.js /out/hls.min.js; \
    curl -fsSL -o mtx/hls.tgz "https://registry.npmjs.org/hls.js/-/hls.js-${MEDIAMTX_HLSJS_VERSION}.tgz"; \
    tar -xzf mtx/hls.tgz -C mtx package/dist/hls.min.js
# mediamtx from its Go module; the two files its go:generate steps would
# fetch are written instead, as scripts/deps.sh does.
RUN set -eux; \
    GOFLAGS=-mod=mod go mod download "github.com/bluenviron/mediamtx@${MEDIAMTX_VERSION}"; \
    cp -r "$(go env GOMODCACHE)/github.com/bluenviron/mediamtx@${MEDIAMTX_VERSION}" src; \
    chmod -R u+w src; \
    echo "${MEDIAMTX_VERSION}" > src/internal/core/VERSION; \
    cp mtx/package/dist/hls.min.js src/internal/servers/hls/hls.min.js; \
    cd src; \
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o /out/mediamtx .; \
    /out/mediamtx --help >/dev/null

# ---- dionysia
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -o /out/dionysia ./cmd/dionysia

# ---- runtime
FROM debian:bookworm-slim
# ffmpeg 5.1 from Debian (libx264, libsrt): the transcoder and packager.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 dionysia; \
    useradd --system --uid 10001 --gid dionysia --home-dir /data --no-create-home --shell /usr/sbin/nologin dionysia; \
    mkdir -p /data /opt/dionysia/bin; \
    chown dionysia:dionysia /data
COPY --from=mediamtx /out/mediamtx /usr/local/bin/mediamtx
COPY --from=mediamtx /out/hls.min.js /opt/dionysia/bin/hls.min.js
COPY --from=build /out/dionysia /usr/local/bin/dionysia
# The node looks for bin/hls.min.js relative to its working directory
# (DIONYSIA_HLSJS names it explicitly).
WORKDIR /opt/dionysia
ENV DIONYSIA_HLSJS=/opt/dionysia/bin/hls.min.js
USER dionysia
# HTTP API/origin, gossip (TCP+UDP), raft, RTSPS (TLS mode), RTMP, RTSP, SRT, WHIP (HTTP) and
# its WebRTC media (UDP): the node's defaults. WebRTC publishers must reach
# the UDP port at an address the node offers: run with --advertise-host set
# to the host's IP address.
EXPOSE 8080 7946/tcp 7946/udp 7947 8322 1935 8554 8890/udp 8889 8189/udp
# Raft log and snapshots, HLS output, mediamtx config. A named volume
# created from this image is owned by the dionysia user.
VOLUME /data
# Flags given to `docker run IMAGE ...` (or compose's command:) are appended;
# a flag given twice takes the last value. Client commands:
#   docker exec <container> dionysia inputs list
ENTRYPOINT ["dionysia", "node", "--data-dir", "/data", "--mediamtx", "/usr/local/bin/mediamtx"]
