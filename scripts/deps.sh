#!/usr/bin/env bash
# Installs what Dionysia needs at run and test time, skipping whatever is already there:
#   ffmpeg + ffprobe  (Debian package, via apt-get)
#   bin/mediamtx      (built from its Go module at a pinned version)
#   bin/hls.min.js    (hls.js from the npm registry, for the dashboard player)
# With --test, also what only the test suite needs:
#   chromium          (Debian package, via apt-get; the browser tests drive it)
#   nginx             (Debian package nginx-light, via apt-get; the CDN in front of test clusters)
#   bin/dash.all.min.js (dash.js from the npm registry, for testcluster/player)
#   ip, tc, nft, iptables (Debian packages iproute2, nftables, iptables: the chaos suite's network faults)
# Usage: scripts/deps.sh [--test]
set -euo pipefail

with_test=0
for arg in "$@"; do
  case "$arg" in
    --test) with_test=1 ;;
    *) printf 'deps: unknown argument %s (usage: scripts/deps.sh [--test])\n' "$arg" >&2; exit 2 ;;
  esac
done

MEDIAMTX_VERSION="${MEDIAMTX_VERSION:-v1.15.3}"
# The hls.js version mediamtx pins (internal/servers/hls/hlsjsdownloader/VERSION) — mediamtx
# embeds it, so it must exist before `go build`.
MEDIAMTX_HLSJS_VERSION="${MEDIAMTX_HLSJS_VERSION:-1.6.13}"
# The dashboard's preview (and the tests' players) use a newer hls.js: up to
# 1.6.16 it loses a discontinuity that lands on the segment named by the
# last EXT-X-PRELOAD-HINT, where every seam of a low-latency stream lands
# (hls.js#7962, fixed in 1.6.17).
HLSJS_VERSION="${HLSJS_VERSION:-1.6.17}"
# dash.js for the test player (testcluster/player): pinned, the registry may refuse @latest.
DASHJS_VERSION="${DASHJS_VERSION:-5.2.1}"

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin"
build="$root/.build"
mkdir -p "$bin" "$build"

log() { printf 'deps: %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to apt-get install $*; run: sudo apt-get update && sudo apt-get install -y $*"
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  apt_install ffmpeg
fi

# The browser test drives Debian's chromium through the DevTools protocol.
if [ "$with_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi

# testcluster.StartNginxCache runs a real nginx as the CDN in front of test clusters.
if [ "$with_test" = 1 ] && [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx-light
fi

# The chaos suite (package chaos) puts nodes in network namespaces (ip) and
# breaks the network with nftables (nft) and qdiscs (tc). Only root can use
# them, so a non-root machine just skips the suite and needs none of them.
if [ "$with_test" = 1 ] && [ "$(id -u)" = 0 ]; then
  if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
    apt_install iproute2
  fi
  if ! command -v nft >/dev/null; then
    apt_install nftables
  fi
  # Where the kernel has no sch_netem, the latency fault delays packets
  # through an iptables NFQUEUE rule instead (chaos/delay.go).
  if ! command -v iptables >/dev/null; then
    apt_install iptables
  fi
fi

# hls.js from the npm registry: one version for the dashboard and the
# tests' players (bin/hls.min.js), the one mediamtx pins for its build.
fetch_hlsjs() { # version -> path of its dist/hls.min.js
  local v="$1" dir="$build/hls.js-$1"
  if [ ! -s "$dir/package/dist/hls.min.js" ]; then
    # npm only when there is something to fetch: it is not needed
    # otherwise, and installing it needs root.
    command -v npm >/dev/null || apt_install npm
    log "fetching hls.js $v from the npm registry"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "hls.js@$v" >/dev/null && tar -xzf "hls.js-$v.tgz" package/dist/hls.min.js)
  fi
  printf '%s\n' "$dir/package/dist/hls.min.js"
}
if [ ! -s "$bin/hls.min.js" ] || [ ! -f "$bin/.hlsjs-$HLSJS_VERSION" ]; then
  cp "$(fetch_hlsjs "$HLSJS_VERSION")" "$bin/hls.min.js"
  rm -f "$bin"/.hlsjs-*
  touch "$bin/.hlsjs-$HLSJS_VERSION"
fi

# dash.js: only the test player needs it. 5.x ships the browser bundle under dist/modern/umd/.
# The stamp names the version in bin/, so a new pin is fetched.
dashjs_stamp="$bin/.dashjs-$DASHJS_VERSION"
if [ "$with_test" = 1 ] && { [ ! -s "$bin/dash.all.min.js" ] || [ ! -f "$dashjs_stamp" ]; }; then
  command -v npm >/dev/null || apt_install npm
  log "fetching dash.js $DASHJS_VERSION from the npm registry"
  dir="$build/dashjs-$DASHJS_VERSION"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "dashjs@$DASHJS_VERSION" >/dev/null &&
    tar -xzf "dashjs-$DASHJS_VERSION.tgz" package/dist/modern/umd/dash.all.min.js &&
    rm -f "dashjs-$DASHJS_VERSION.tgz") # the tarball is 26 MB of sources and maps
  cp "$dir/package/dist/modern/umd/dash.all.min.js" "$bin/dash.all.min.js"
  rm -f "$bin"/.dashjs-*
  touch "$dashjs_stamp"
fi

stamp="$bin/.mediamtx-$MEDIAMTX_VERSION"
if [ ! -x "$bin/mediamtx" ] || [ ! -f "$stamp" ]; then
  log "building mediamtx $MEDIAMTX_VERSION from its Go module (about a minute)"
  modcache="$(go env GOMODCACHE)"
  src="$modcache/github.com/bluenviron/mediamtx@$MEDIAMTX_VERSION"
  if [ ! -d "$src" ]; then
    (cd "$build" && GOFLAGS=-mod=mod go mod download "github.com/bluenviron/mediamtx@$MEDIAMTX_VERSION")
  fi
  work="$build/mediamtx-src"
  rm -rf "$work"
  cp -r "$src" "$work"
  chmod -R u+w "$work"
  # Files the module's go:generate steps would fetch from the internet: write them instead.
  echo "$MEDIAMTX_VERSION" >"$work/internal/core/VERSION"
  cp "$(fetch_hlsjs "$MEDIAMTX_HLSJS_VERSION")" "$work/internal/servers/hls/hls.min.js"
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$bin/mediamtx" .)
  rm -rf "$work"
  rm -f "$bin"/.mediamtx-*
  touch "$stamp"
  log "built $bin/mediamtx"
fi

log "ready: $(ffmpeg -version | head -1 | cut -d' ' -f1-3), mediamtx $MEDIAMTX_VERSION"
