/**
 * What makes a throwaway server private (a drill's copy of production data), for MariaDB
 * and MySQL alike: an unprivileged OS user to run it as when the worker is root, a 0700
 * folder that user owns with an empty folder for secure_file_priv, and accounts locked
 * down before anything else connects (random root password, one read-only account, no
 * other accounts), the passwords in 0600 files under `secrets/`.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';

export const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** A private server's 0600 files: root's password and a read-only account's (SELECT, SHOW VIEW). */
export interface PrivateSecrets {
  rootPasswordFile: string;
  checkUser: string;
  checkPasswordFile: string;
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** The first of `names` that exists on the host with a uid other than root's; null when the worker is not root. */
export function unprivilegedUser(names: string[]): OsUser | null {
  if (!runningAsRoot) return null;
  for (const name of names) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (uid > 0) return { name, uid, gid };
    } catch {
      // no such user
    }
  }
  throw new Error(`no unprivileged OS user (${names.join(' or ')}) to run a private server as`);
}

/** A user's entry in a passwd file (e.g. a chroot's /etc/passwd); null if absent. */
export function passwdEntry(file: string, name: string): OsUser | null {
  if (!existsSync(file)) return null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/**
 * Makes a private server's folder: the server's OS user owns it (socket, logs, data) and
 * the empty `files` folder for secure_file_priv, not `secrets` next to them. Every folder
 * above must let that user through, or the server could not reach its own files. Returns
 * the `files` folder.
 */
export function preparePrivateFolder(baseDir: string, runAs: OsUser | null): string {
  if (runAs) {
    for (let dir = path.dirname(baseDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const st = statSync(dir);
      if ((st.mode & 0o001) === 0 && st.uid !== runAs.uid) {
        throw new Error(`${dir} does not let the OS user ${runAs.name} through (mode ${(st.mode & 0o777).toString(8)}); a private server runs as ${runAs.name}: chmod o+x it, or put the servers elsewhere (DBOPS_DRILL_DIR)`);
      }
    }
  }
  const filesDir = path.join(baseDir, 'files');
  mkdirSync(filesDir, { recursive: true, mode: 0o700 });
  mkdirSync(path.join(baseDir, 'secrets'), { recursive: true, mode: 0o700 });
  if (runAs) {
    chownSync(baseDir, runAs.uid, runAs.gid);
    chownSync(filesDir, runAs.uid, runAs.gid);
  }
  return filesDir;
}

/** The real uid a process runs as (from /proc), or null where that cannot be read. */
function processUid(pid: number): number | null {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Uid:'));
    return line ? Number(line.split(/\s+/)[1]) : null;
  } catch {
    return null;
  }
}

/** Refuses a private server that does not run as the OS user it was meant to (e.g. a wrapper that ignored --user). */
export function checkRunsAs(pid: number, runAs: OsUser | null, what: string): void {
  if (!runAs) return;
  const uid = processUid(pid);
  if (uid !== null && uid !== runAs.uid) throw new Error(`${what} (pid ${pid}) runs as uid ${uid}, not as ${runAs.name} (uid ${runAs.uid}); a private server never runs as root`);
}

/**
 * A private server's accounts: root gets a random password (the only other way in, the
 * socket, is in a 0700 folder), every other account goes but the product's own system
 * accounts (`keep`), and a read-only account is made for checks. The passwords are
 * written to 0600 files next to the server.
 */
export async function lockDown(baseDir: string, socket: string, keep: string[]): Promise<PrivateSecrets> {
  const rootPassword = randomBytes(24).toString('base64url');
  const checkPassword = randomBytes(24).toString('base64url');
  const conn = await createConnection({ socketPath: socket, user: 'root' });
  try {
    const [users] = (await conn.query("SELECT User AS u, Host AS h FROM mysql.user WHERE NOT (User = 'root' AND Host = 'localhost') AND User NOT IN (?)", [keep])) as unknown as [
      Array<{ u: string; h: string }>,
    ];
    for (const u of users) await conn.query('DROP USER ?@?', [u.u, u.h]);
    await conn.query('CREATE USER dbops_check@localhost IDENTIFIED BY ?', [checkPassword]);
    await conn.query('GRANT SELECT, SHOW VIEW ON *.* TO dbops_check@localhost');
    await conn.query('ALTER USER root@localhost IDENTIFIED BY ?', [rootPassword]);
  } finally {
    await conn.end();
  }
  const rootPasswordFile = path.join(baseDir, 'secrets', 'root.password');
  const checkPasswordFile = path.join(baseDir, 'secrets', 'check.password');
  writeFileSync(rootPasswordFile, rootPassword + '\n', { mode: 0o600 });
  writeFileSync(checkPasswordFile, checkPassword + '\n', { mode: 0o600 });
  return { rootPasswordFile, checkUser: 'dbops_check', checkPasswordFile };
}

/**
 * A restored datadir (another server's copy) made ready for a private start: owned by the
 * server's OS user, and an init file (0600, that user's) that puts root@localhost back to
 * what a fresh install has, so `lockDown` can take over as with any private server. The
 * copy's other accounts are dropped by `lockDown`. Returns the init file; remove it with
 * `dropInitFile` once the server is up.
 */
export function adoptRestoredData(baseDir: string, datadir: string, runAs: OsUser | null, admin?: { user: string; password: string }): string {
  if (runAs) execFileSync('chown', ['-R', `${runAs.uid}:${runAs.gid}`, datadir]);
  const file = path.join(baseDir, 'adopt.sql');
  // Written into SQL literals: only names and passwords that need no quoting.
  if (admin && !(/^[a-z_][a-z0-9_]{0,31}$/.test(admin.user) && /^[A-Za-z0-9_-]{16,128}$/.test(admin.password))) throw new Error('a restore account name or password that would need quoting');
  const who = admin ? `'${admin.user}'@'localhost'` : "'root'@'localhost'";
  // One statement per line: the server reads an init file line by line.
  const sql = [`CREATE USER IF NOT EXISTS ${who};`, `ALTER USER ${who} IDENTIFIED BY '${admin?.password ?? ''}';`, `GRANT ALL PRIVILEGES ON *.* TO ${who} WITH GRANT OPTION;`];
  writeFileSync(file, sql.join('\n') + '\n', { mode: 0o600 });
  if (runAs) chownSync(file, runAs.uid, runAs.gid);
  return file;
}

export function dropInitFile(file: string | null): void {
  if (file) rmSync(file, { force: true });
}
