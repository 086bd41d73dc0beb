/**
 * A private, throwaway MySQL server in a folder of its own (datadir, socket, port, binlog
 * ROW with GTIDs, server id), the MySQL twin of ./mariadb.ts. Debian 12 ships no MySQL, so
 * the binaries come from the Debian sid chroot scripts/setup.sh builds in .tools/mysql-root,
 * run through the wrappers in .tools/mysql/bin (or $DBOPS_MYSQL_BIN_DIR). The wrappers run
 * each tool in a private mount namespace where the host's data folders (/tmp, /work, /home,
 * ...; not /etc, /usr, /var, /run) have the same paths as on the host, so the datadir,
 * socket and logs below are plain host paths. Every wrapper step execs the next, so the pid
 * spawn returns is mysqld's own; the pid file confirms it. It never touches a system service.
 *
 * A private server (`private: true`, a drill's throwaway copy) runs as `nobody`: the chroot
 * has its own /etc/passwd, so the user must exist there with the host's uid and gid (the
 * folders it owns are host folders, chowned on the host).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { freePort, processAlive, runToCompletion, waitUntilAccepting, type LocalServer, type LocalServerOptions } from './local';
import { adoptRestoredData, checkRunsAs, dropInitFile, lockDown, passwdEntry, preparePrivateFolder, runningAsRoot, unprivilegedUser, type OsUser, type PrivateSecrets } from './private';
import { childEnv, projectRoot as findProjectRoot } from '../../tools/tools';

const projectRoot = findProjectRoot();

export type MysqlTool = 'mysqld' | 'mysql' | 'mysqldump' | 'mysqlbinlog' | 'mysqladmin';

/** $DBOPS_MYSQL_BIN_DIR (a folder with the same wrapper names), else .tools/mysql/bin. */
function mysqlBinDir(): string {
  return process.env.DBOPS_MYSQL_BIN_DIR || path.join(projectRoot, '.tools', 'mysql', 'bin');
}

/** The path of a MySQL tool's wrapper (it runs the tool from the chroot). */
export function mysqlToolPath(name: MysqlTool): string {
  return path.join(mysqlBinDir(), name);
}

const chrootDir = path.join(projectRoot, '.tools', 'mysql-root');

/** Why this process cannot run MySQL, with the fix; null when it can. */
export function mysqlUnavailableReason(): string | null {
  const fix = 'run scripts/setup.sh as root on this host (it builds the MySQL chroot), or set DBOPS_MYSQL_BIN_DIR to a folder with MySQL tool wrappers (mysqld, mysql, mysqldump, mysqlbinlog)';
  if (process.env.DBOPS_MYSQL_BIN_DIR) {
    return existsSync(mysqlToolPath('mysqld')) ? null : `MySQL is not installed for this worker: DBOPS_MYSQL_BIN_DIR=${process.env.DBOPS_MYSQL_BIN_DIR} has no mysqld; ${fix}`;
  }
  if (!existsSync(mysqlToolPath('mysqld')) || !existsSync(path.join(chrootDir, 'usr', 'sbin', 'mysqld'))) return `MySQL is not installed for this worker: ${fix}`;
  if (!runningAsRoot) return 'MySQL is installed (the chroot in .tools/mysql-root) but running it needs root: run the worker as root, or set DBOPS_MYSQL_BIN_DIR to MySQL tool wrappers this user can run';
  return null;
}

/** Is MySQL installed for the project (scripts/setup.sh ran as root), and can we run it? */
export function mysqlAvailable(): boolean {
  return mysqlUnavailableReason() === null;
}

/**
 * The OS user a private server runs as when the worker is root: `nobody`, which must have
 * the same uid and gid in the chroot as on the host (checked where the chroot is ours).
 */
function privateServerUser(): OsUser | null {
  const host = unprivilegedUser(['nobody']);
  if (!host || process.env.DBOPS_MYSQL_BIN_DIR) return host;
  const inside = passwdEntry(path.join(chrootDir, 'etc', 'passwd'), host.name);
  if (!inside || inside.uid !== host.uid || inside.gid !== host.gid) {
    throw new Error(`the MySQL chroot's ${host.name} (${inside ? `uid ${inside.uid}, gid ${inside.gid}` : 'missing'}) is not the host's (uid ${host.uid}, gid ${host.gid}): a private MySQL server could not own its folder; rebuild the chroot (scripts/setup.sh)`);
  }
  return host;
}

/** Host folders that are NOT the host's inside the chroot (see scripts/setup.sh). */
const HIDDEN_IN_CHROOT = ['/bin', '/boot', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/run', '/sbin', '/usr', '/var'];

function checkVisibleInChroot(dir: string): void {
  if (process.env.DBOPS_MYSQL_BIN_DIR) return; // someone else's wrappers: their rules
  if (dir === '/var/tmp' || dir.startsWith('/var/tmp/')) return;
  const hidden = HIDDEN_IN_CHROOT.find((h) => dir === h || dir.startsWith(h + '/'));
  if (hidden) throw new Error(`MySQL sandbox folder ${dir} is under ${hidden}, which the MySQL chroot does not share with the host; use a folder under /tmp or the project`);
}

export type MysqlSandboxOptions = LocalServerOptions;

export interface MysqlSandbox extends LocalServer {
  /** Private servers: 0600 files holding the root password and a read-only account's (user dbops_check). */
  readonly secrets: PrivateSecrets | null;
}

function readPid(pidFile: string): number | null {
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

export async function startMysqlSandbox(options: MysqlSandboxOptions): Promise<MysqlSandbox> {
  const baseDir = path.resolve(options.baseDir);
  checkVisibleInChroot(baseDir);
  const datadir = path.join(baseDir, 'data');
  const socket = path.join(baseDir, 'mysqld.sock');
  const errorLog = path.join(baseDir, 'error.log');
  const pidFile = path.join(baseDir, 'mysqld.pid');
  mkdirSync(baseDir, { recursive: true, mode: options.private ? 0o700 : 0o755 });
  const mysqld = mysqlToolPath('mysqld');
  if (!existsSync(mysqld)) throw new Error(`${mysqld} not found: run scripts/setup.sh as root (it builds the MySQL chroot), or set DBOPS_MYSQL_BIN_DIR`);
  const runAs = options.private ? privateServerUser() : null;
  // --user only means something to a mysqld started as root (a container's worker is not).
  const userArg = runAs ? [`--user=${runAs.name}`] : runningAsRoot ? ['--user=root'] : [];
  const filesDir = options.private ? preparePrivateFolder(baseDir, runAs) : '';
  const initFile = options.private && options.restoredData ? adoptRestoredData(baseDir, datadir, runAs, options.restoredAdmin) : null;

  // mysql.ibd is the data dictionary: without it the datadir was never initialised.
  // Initialise into a side folder and rename it into place when complete, so an
  // interrupted --initialize never leaves a datadir a later start would trust.
  if (!existsSync(path.join(datadir, 'mysql.ibd'))) {
    if (existsSync(datadir)) throw new Error(`${datadir} exists but holds no initialised MySQL datadir; remove it first`);
    const initDir = path.join(baseDir, 'data.initializing');
    rmSync(initDir, { recursive: true, force: true });
    await runToCompletion(mysqld, ['--no-defaults', '--initialize-insecure', ...userArg, `--datadir=${initDir}`], path.join(baseDir, 'install.log'));
    renameSync(initDir, datadir);
  }

  const stale = readPid(pidFile);
  // A stale pid file from a server that died is fine; a live server is not.
  if (stale !== null && processAlive(stale)) throw new Error(`a MySQL server (pid ${stale}) already runs on ${datadir}; stop it first (kill ${stale})`);
  rmSync(pidFile, { force: true });

  const port = options.private ? 0 : (options.port ?? (await freePort()));
  const network = options.private ? ['--skip-networking', `--secure-file-priv=${filesDir}`] : [`--port=${port}`, '--bind-address=127.0.0.1', '--secure-file-priv='];
  const args = [
    '--no-defaults',
    ...userArg,
    `--datadir=${datadir}`,
    `--socket=${socket}`,
    ...network,
    '--mysqlx=OFF',
    `--log-bin=${path.join(datadir, 'binlog')}`,
    `--server-id=${options.serverId ?? 1}`,
    '--gtid-mode=ON',
    '--enforce-gtid-consistency=ON',
    '--binlog-format=ROW',
    `--pid-file=${pidFile}`,
    `--log-error=${errorLog}`,
    '--innodb-buffer-pool-size=256M',
    '--innodb-flush-log-at-trx-commit=2',
    '--sync-binlog=0',
    '--max-allowed-packet=256M',
    '--character-set-server=utf8mb4',
    ...(initFile ? [`--init-file=${initFile}`] : []),
    ...(options.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(mysqld, args, { stdio: 'ignore', env: childEnv() });
  let exited: string | null = null;
  const exitedPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = String(code ?? signal);
      resolve();
    });
    child.on('error', (e) => {
      exited = e.message;
      resolve();
    });
  });

  await waitUntilAccepting({
    name: 'mysqld',
    errorLog,
    privateSocket: options.private ? socket : null,
    port,
    exited: () => exited,
    timeoutMs: options.startTimeoutMs ?? 60_000,
    onTimeout: () => {
      const pid = readPid(pidFile);
      if (pid !== null && pid !== child.pid) process.kill(pid, 'SIGKILL');
      child.kill('SIGKILL');
    },
  });
  dropInitFile(initFile);

  // The wrappers exec all the way down, so the pid file names our child. Should some
  // other DBOPS_MYSQL_BIN_DIR wrapper fork instead, signal mysqld itself, not the wrapper.
  const pid = readPid(pidFile) ?? child.pid ?? -1;

  const stop = async (): Promise<void> => {
    const gone = async (): Promise<void> => {
      await exitedPromise;
      while (pid !== child.pid && processAlive(pid)) await new Promise((r) => setTimeout(r, 100));
    };
    if (exited !== null && !processAlive(pid)) return;
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      child.kill('SIGKILL');
    }, 20_000);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await gone();
    clearTimeout(timer);
  };

  let secrets: PrivateSecrets | null = null;
  if (options.private) {
    try {
      checkRunsAs(pid, runAs, 'mysqld');
      // mysql.infoschema, mysql.session and mysql.sys are MySQL's own (definers of its system views).
      // A restored datadir that keeps its accounts: the restore comes in as its own account instead.
      if (!options.restoredAdmin) secrets = await lockDown(baseDir, socket, ['mysql.infoschema', 'mysql.session', 'mysql.sys']);
    } catch (error) {
      await stop();
      throw error;
    }
  }
  return { baseDir, datadir, socket, host: '127.0.0.1', port, pid, errorLog, secrets, stop };
}
