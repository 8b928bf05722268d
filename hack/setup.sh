#!/usr/bin/env bash
# Installs what Gaia's build and tests need on a fresh Debian machine, when missing:
# the Rust components (rustfmt, clippy), Debian packages (Prometheus, wrk for benchmarks,
# docker-registry for the image source's tests), and Python packages for the test harness. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
. hack/lib.sh

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" \
      || { gaia_log "installing Rust component $component"; rustup component add "$component"; }
  done
fi

missing=()
for pair in prometheus:prometheus promtool:prometheus wrk:wrk shellcheck:shellcheck docker-registry:docker-registry; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  gaia_log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  # Do not let the packages' init scripts start a system-wide prometheus or registry (the
  # tests start their own on loopback): a refusing policy-rc.d for the install, unless one exists.
  policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod +x "$policy"
    created=1
  fi
  "${sudo_cmd[@]}" apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created" -eq 0 ] || "${sudo_cmd[@]}" rm -f "$policy"
fi

python3 - <<'PY' || { gaia_log "installing Python test packages"; python3 -m pip install -q -r tests/requirements.txt; }
import importlib.util, sys
sys.exit(0 if all(importlib.util.find_spec(m) for m in ("pytest", "yaml", "matplotlib")) else 1)
PY
