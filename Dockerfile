# syntax=docker/dockerfile:1
#
# dbops worker image.
#   build:   node 20 (Debian bookworm), npm ci, tsc -> dist/
#   runtime: MySQL's own mysql:8.4 image (Oracle Linux 9, amd64 + arm64), which already
#            carries the 8.4 client tools dbops runs (mysql, mysqldump, mysqlbinlog),
#            zstd, and mysqld: a DR drill of the compose MySQL restores into a throwaway
#            mysqld of the same version inside the worker container. Plus the Node 20
#            binary copied from the official node image.
#
#   docker build -t dbops:local .
#   docker run --rm dbops:local --help
#
# The runtime base declares VOLUME /var/lib/mysql (for its server, unused here): Docker
# gives each worker container an empty anonymous volume there; `docker compose down -v`
# removes it.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG MYSQL_IMAGE=mysql:8.4

# ---- build: compile TypeScript ---------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
RUN npx tsc -p tsconfig.json

# ---- production dependencies only --------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# ---- the node binary (official nodejs.org build, glibc >= 2.28) --------------------------
FROM ${NODE_IMAGE} AS node

# ---- runtime -----------------------------------------------------------------------------
FROM ${MYSQL_IMAGE} AS runtime

COPY --from=node /usr/local/bin/node /usr/local/bin/node

# Node needs libstdc++ (normally already there for mysqld / mysqlsh; installed only if not).
# Fails the build early if any tool the worker shells out to is missing.
RUN set -eux; \
    if ! node --version; then microdnf install -y libstdc++; microdnf clean all; node --version; fi; \
    mysql --version; \
    mysqldump --version; \
    mysqlbinlog --version; \
    mysqld --version; \
    zstd --version; \
    mkdir -p /opt/dbops/mysql-bin; \
    for tool in mysqld mysql mysqldump mysqlbinlog mysqladmin; do \
      ln -s "$(command -v "$tool")" "/opt/dbops/mysql-bin/$tool"; \
    done

# Non-root user. Writable paths belong to group 0 as well, so the container also works
# under an arbitrary uid with gid 0 (docker-compose.yml runs it as the host user, to read
# the 0600 secret file).
RUN set -eux; \
    groupadd --system --gid 10001 dbops; \
    useradd --system --uid 10001 --gid dbops --home-dir /home/dbops --create-home \
        --shell /sbin/nologin dbops; \
    mkdir -p /var/lib/dbops/repository /etc/dbops; \
    chown -R dbops:0 /var/lib/dbops /home/dbops; \
    chmod -R g=u /var/lib/dbops /home/dbops; \
    chmod 0770 /var/lib/dbops/repository

WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./

# DBOPS_MYSQL_BIN_DIR: where drills find mysqld and its tools (the image's own).
ENV NODE_ENV=production \
    HOME=/home/dbops \
    DBOPS_CONFIG=/etc/dbops/dbops.yaml \
    DBOPS_MYSQL_BIN_DIR=/opt/dbops/mysql-bin

USER dbops

ENTRYPOINT ["node","dist/src/client/cli.js"]
CMD ["worker"]
