#!/usr/bin/env bash
# Installs what the benchmark suite (make bench) needs beyond scripts/deps.sh:
#   wrk    load generator for the routing and API rows
#   nginx  the baseline the routing rows compare against (never started as a
#          service: the suite runs its own foreground nginx on loopback)
# Usage: scripts/bench-deps.sh
set -euo pipefail

log() { printf 'bench-deps: %s\n' "$*" >&2; }

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "need root to apt-get install ${missing[*]}; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  # policy-rc.d 101: Debian's postinst must not start nginx as a system
  # service on :80; the suite runs its own instance.
  prc=/usr/sbin/policy-rc.d
  made_prc=0
  if [ ! -e "$prc" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod +x "$prc" && made_prc=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    [ "$made_prc" = 1 ] && rm -f "$prc"; exit 1; }
  [ "$made_prc" = 1 ] && rm -f "$prc"
fi
log "ready: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $( (nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1) | head -1)"
