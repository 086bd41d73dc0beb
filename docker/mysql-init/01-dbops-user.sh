#!/usr/bin/env bash
# Creates the least-privilege `dbops` backup account on first start of the mysql:8.4
# container (the entrypoint runs /docker-entrypoint-initdb.d/* only while the data
# volume is empty; to re-run it: docker compose down -v, which deletes all data).
#
# Shell rather than SQL because the password is a Docker secret, read here from
# /run/secrets/dbops_mysql_password (the same file the worker reads): it never appears in
# docker-compose.yml, in the environment, on a command line or in the binary log.
#
# Non-executable files are sourced by the entrypoint (docker_process_sql is then
# available); if someone chmods it +x it runs standalone and connects on its own.

dbops_init_user() {
  local secret=${DBOPS_MYSQL_PASSWORD_SECRET:-/run/secrets/dbops_mysql_password}
  local user=${DBOPS_MYSQL_USER:-dbops}
  local password

  if [ ! -r "$secret" ]; then
    echo "01-dbops-user.sh: cannot read $secret (create docker/secrets/dbops_mysql_password," \
      "chmod 600, owned by the user in DBOPS_UID; see docker/secrets/README.md)" >&2
    return 1
  fi
  password=$(<"$secret")     # drops trailing newlines, as dbops strips the final one
  password=${password%$'\r'}
  if [ -z "$password" ] || [[ "$password" == *[$'\n\r']* ]]; then
    echo "01-dbops-user.sh: $secret must hold exactly one non-empty line" >&2
    return 1
  fi
  # SQL string literal: double backslashes and single quotes.
  password=${password//\\/\\\\}
  password=${password//\'/\'\'}

  local sql
  sql=$(cat <<SQL
SET @@SESSION.SQL_LOG_BIN = 0;
CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}';
ALTER USER '${user}'@'%' IDENTIFIED BY '${password}';
-- Consistent dumps (mysqldump --single-transaction, routines, triggers, events, views),
-- binlog coordinates and GTIDs (RELOAD for FLUSH, REPLICATION CLIENT for SHOW BINARY LOG
-- STATUS), binlog streaming (REPLICATION SLAVE), the backup lock (BACKUP_ADMIN).
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD, PROCESS,
      REPLICATION CLIENT, REPLICATION SLAVE, BACKUP_ADMIN
  ON *.* TO '${user}'@'%';
SQL
)

  if declare -F docker_process_sql >/dev/null; then
    # Sourced by docker-entrypoint.sh: root over the socket of the temporary server.
    docker_process_sql --database=mysql <<<"$sql"
  else
    # Executed standalone: same connection, built by hand (password via a pipe, not argv).
    mysql --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "${MYSQL_ROOT_PASSWORD:-}") \
      --protocol=socket -uroot --database=mysql <<<"$sql"
  fi
  echo "01-dbops-user.sh: account '${user}'@'%' ready"
}

dbops_init_user
