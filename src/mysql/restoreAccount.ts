/**
 * The account a restore writes with: created for one restore by the cluster's restore
 * administrator (`restoreUser`), able to write only its target database, and dropped
 * afterwards (also by the sweeper when a restore died before it could drop its own).
 *
 * Grants: ALL on the target database (the `_` and `%` of its name escaped, or the grant
 * would match other databases), plus what replaying a binary log needs:
 *   - MariaDB: BINLOG REPLAY (to run BINLOG '…' row events). MariaDB applies row events
 *     without checking table privileges, so dbops checks every row event's table map in
 *     the replay stream itself (see domain/restore/replayStream).
 *   - MySQL: REPLICATION_APPLIER (row events are checked against table privileges) and
 *     SESSION_VARIABLES_ADMIN (mysqlbinlog sets pseudo_thread_id). Never BINLOG_ADMIN or
 *     SUPER: with those, MySQL applies row events for any table.
 * The administrator needs these privileges WITH GRANT OPTION.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { Product } from '../domain/manifest';
import { quoteIdentifier } from '../domain/identifiers';
import type { ClusterConfig } from '../config/schema';

/** The account restores use (write privileges), falling back to the backup account. */
export function restoreAccount(cluster: ClusterConfig): ClusterConfig {
  return {
    ...cluster,
    user: cluster.restoreUser ?? cluster.user,
    ...(cluster.restorePassword ? { password: cluster.restorePassword } : {}),
  };
}

export const SCOPED_ACCOUNT_PREFIX = 'dbops_r_';

export interface ScopedAccount {
  user: string;
  host: string;
  password: string;
}

/** One account per restore run (a retry of the same run reuses the name). */
export function scopedAccountName(owner: string): string {
  return SCOPED_ACCOUNT_PREFIX + createHash('sha256').update(owner).digest('hex').slice(0, 12);
}

/** A database name in a GRANT: backticks, with the LIKE wildcards escaped. */
export function grantDatabase(database: string): string {
  return quoteIdentifier(database).replace(/([_%])/g, '\\$1');
}

/** How the server sees this connection's client host: the scoped account is created for exactly that host. */
export async function clientHost(conn: Connection): Promise<string> {
  const [rows] = await conn.query<RowDataPacket[]>("SELECT SUBSTRING_INDEX(USER(), '@', -1) AS host");
  return String(rows[0]?.host ?? 'localhost');
}

export function replayPrivileges(product: Product): string {
  return product === 'mariadb' ? 'BINLOG REPLAY' : 'REPLICATION_APPLIER, SESSION_VARIABLES_ADMIN';
}

/** Creates (or, on a retry, resets) the account of this restore. */
export async function createScopedAccount(admin: Connection, product: Product, target: string, owner: string): Promise<ScopedAccount> {
  const account: ScopedAccount = { user: scopedAccountName(owner), host: await clientHost(admin), password: randomBytes(24).toString('base64url') };
  await admin.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [account.user, account.host, account.password]);
  await admin.query('ALTER USER ?@? IDENTIFIED BY ?', [account.user, account.host, account.password]);
  await admin.query(`GRANT ALL PRIVILEGES ON ${grantDatabase(target)}.* TO ?@?`, [account.user, account.host]);
  await admin.query(`GRANT ${replayPrivileges(product)} ON *.* TO ?@?`, [account.user, account.host]);
  return account;
}

export async function dropScopedAccount(admin: Connection, account: { user: string; host: string }): Promise<void> {
  if (!account.user.startsWith(SCOPED_ACCOUNT_PREFIX)) throw new Error(`refusing to drop ${account.user}: not a restore account of dbops`);
  await admin.query('DROP USER IF EXISTS ?@?', [account.user, account.host]);
}

/** Every restore account on the server (the sweeper drops those whose restore has ended). */
export async function listScopedAccounts(admin: Connection): Promise<Array<{ user: string; host: string }>> {
  const [rows] = await admin.query<RowDataPacket[]>("SELECT User AS user, Host AS host FROM mysql.user WHERE User LIKE 'dbops\\_r\\_%'");
  return rows.map((r) => ({ user: String(r.user), host: String(r.host) }));
}
