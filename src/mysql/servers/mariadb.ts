/**
 * A private, throwaway MariaDB server in a folder of its own: its datadir, socket, port,
 * binlog (ROW) and server id. Used by `dbops dev`, by the tests, and later by restores
 * and DR drills. It never touches a system service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { childEnv, findTool } from '../../tools/tools';
import { freePort, processAlive, runToCompletion, type LocalServer } from './local';

export interface MariadbSandboxOptions {
  /** Folder for datadir, socket, logs; created if missing, reused if already initialised. */
  baseDir: string;
  port?: number;
  serverId?: number;
  /** Extra mariadbd options, e.g. ['--innodb-buffer-pool-size=1G']. */
  extraArgs?: string[];
  startTimeoutMs?: number;
  /**
   * A server nobody else can reach (a drill's throwaway copy of production data): no TCP,
   * the socket in a 0700 folder, secure_file_priv an empty folder, run as an unprivileged OS
   * user when the worker is root, and a random root password (in a 0600 file, see
   * `secrets`) set before anything else connects.
   */
  private?: boolean;
}

export interface MariadbSandbox extends LocalServer {
  /** Private servers: 0600 files holding the root password and a read-only account's (user dbops_check). */
  readonly secrets: { rootPasswordFile: string; checkUser: string; checkPasswordFile: string } | null;
  stop(): Promise<void>;
}

/** The OS account a private server runs as when the worker is root (never root itself). */
async function unprivilegedUser(): Promise<{ name: string; uid: number; gid: number } | null> {
  if (!runningAsRoot) return null;
  const { execFileSync } = await import('node:child_process');
  for (const name of ['mysql', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (uid > 0) return { name, uid, gid };
    } catch {
      // no such user
    }
  }
  throw new Error('no unprivileged OS user (mysql or nobody) to run a private server as');
}

const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export async function startMariadbSandbox(options: MariadbSandboxOptions): Promise<MariadbSandbox> {
  const baseDir = path.resolve(options.baseDir);
  const datadir = path.join(baseDir, 'data');
  const socket = path.join(baseDir, 'mysqld.sock');
  const errorLog = path.join(baseDir, 'error.log');
  mkdirSync(baseDir, { recursive: true, mode: options.private ? 0o700 : 0o755 });
  const runAs = options.private ? await unprivilegedUser() : null;
  if (runAs) {
    // Every folder above the server's own must let its OS user through, or it cannot reach its files.
    for (let dir = path.dirname(baseDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const { statSync } = await import('node:fs');
      const st = statSync(dir);
      if ((st.mode & 0o001) === 0 && st.uid !== runAs.uid) {
        throw new Error(`${dir} does not let the OS user ${runAs.name} through (mode ${(st.mode & 0o777).toString(8)}); a private server runs as ${runAs.name}: chmod o+x it, or put the servers elsewhere (DBOPS_DRILL_DIR)`);
      }
    }
  }
  const userArgs = runAs ? [`--user=${runAs.name}`] : runningAsRoot ? ['--user=root'] : [];
  const filesDir = path.join(baseDir, 'files');
  if (options.private) {
    mkdirSync(filesDir, { recursive: true, mode: 0o700 });
    // The server's OS user owns its folder (socket, logs, data) but not the secrets next to them.
    mkdirSync(path.join(baseDir, 'secrets'), { recursive: true, mode: 0o700 });
    if (runAs) {
      chownSync(baseDir, runAs.uid, runAs.gid);
      chownSync(filesDir, runAs.uid, runAs.gid);
    }
  }

  if (!existsSync(path.join(datadir, 'mysql'))) {
    await runToCompletion(
      await findTool('mariadb-install-db'),
      [
        '--no-defaults',
        ...userArgs,
        `--datadir=${datadir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
      ],
      path.join(baseDir, 'install.log'),
    );
  }

  const pidFile = path.join(baseDir, 'mysqld.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    // A stale pid file from a server that died is fine; a live server is not.
    if (processAlive(pid)) throw new Error(`a MariaDB server (pid ${pid}) already runs on ${datadir}; stop it first (kill ${pid})`);
  }
  const port = options.private ? 0 : (options.port ?? (await freePort()));
  const network = options.private ? ['--skip-networking', `--secure-file-priv=${filesDir}`] : [`--port=${port}`, '--bind-address=127.0.0.1'];
  const args = [
    '--no-defaults',
    ...userArgs,
    `--datadir=${datadir}`,
    `--socket=${socket}`,
    ...network,
    `--pid-file=${pidFile}`,
    `--log-error=${errorLog}`,
    `--log-bin=${path.join(datadir, 'binlog')}`,
    `--server-id=${options.serverId ?? 1}`,
    '--binlog-format=ROW',
    '--log-slave-updates=ON',
    '--skip-name-resolve',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_unicode_ci',
    '--innodb-buffer-pool-size=256M',
    '--innodb-flush-log-at-trx-commit=2',
    '--sync-binlog=0',
    '--max-allowed-packet=256M',
    '--event-scheduler=OFF',
    ...(options.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(await findTool('mariadbd'), args, { stdio: 'ignore', env: childEnv() });
  let exited: number | null = null;
  child.on('exit', (code) => {
    exited = code ?? -1;
  });

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exited !== null) {
      const tail = existsSync(errorLog) ? readFileSync(errorLog, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`mariadbd exited with ${exited} during start; error log ${errorLog}:\n${tail}`);
    }
    try {
      // TCP on our own port: proves that this process, not an older one on the socket, is up.
      // A private server has no TCP; its socket is in a folder of its own.
      const conn = await createConnection(options.private ? { socketPath: socket, user: 'root' } : { host: '127.0.0.1', port, user: 'root' });
      await conn.end();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`mariadbd did not accept connections within the timeout; see ${errorLog}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const stop = async (): Promise<void> => {
    if (exited !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  };

  let secrets: MariadbSandbox['secrets'] = null;
  if (options.private) {
    try {
      secrets = await lockDown(baseDir, socket);
    } catch (error) {
      await stop();
      throw error;
    }
  }
  return { baseDir, datadir, socket, host: '127.0.0.1', port, pid: child.pid ?? -1, errorLog, secrets, stop };
}

/**
 * A private server's accounts: root gets a random password (the only other way in, the
 * socket, is in a 0700 folder), every other account goes, and a read-only account is made
 * for checks. The passwords are written to 0600 files next to the server.
 */
async function lockDown(baseDir: string, socket: string): Promise<NonNullable<MariadbSandbox['secrets']>> {
  const { randomBytes } = await import('node:crypto');
  const { writeFileSync } = await import('node:fs');
  const rootPassword = randomBytes(24).toString('base64url');
  const checkPassword = randomBytes(24).toString('base64url');
  const conn = await createConnection({ socketPath: socket, user: 'root' });
  try {
    const [users] = (await conn.query("SELECT User AS u, Host AS h FROM mysql.user WHERE NOT (User = 'root' AND Host = 'localhost') AND User NOT IN ('mariadb.sys', 'mysql')")) as unknown as [Array<{ u: string; h: string }>];
    for (const u of users) await conn.query('DROP USER ?@?', [u.u, u.h]);
    await conn.query('CREATE USER dbops_check@localhost IDENTIFIED BY ?', [checkPassword]);
    await conn.query('GRANT SELECT, SHOW VIEW ON *.* TO dbops_check@localhost');
    await conn.query("ALTER USER root@localhost IDENTIFIED BY ?", [rootPassword]);
  } finally {
    await conn.end();
  }
  const rootPasswordFile = path.join(baseDir, 'secrets', 'root.password');
  const checkPasswordFile = path.join(baseDir, 'secrets', 'check.password');
  writeFileSync(rootPasswordFile, rootPassword + '\n', { mode: 0o600 });
  writeFileSync(checkPasswordFile, checkPassword + '\n', { mode: 0o600 });
  return { rootPasswordFile, checkUser: 'dbops_check', checkPasswordFile };
}
