/**
 * A private, throwaway MariaDB server in a folder of its own: its datadir, socket, port,
 * binlog (ROW) and server id. Used by `dbops dev`, by the tests, and later by restores
 * and DR drills. It never touches a system service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { childEnv, findTool } from '../../tools/tools';
import { freePort, processAlive, runToCompletion, waitUntilAccepting, type LocalServer, type LocalServerOptions } from './local';
import { adoptRestoredData, checkRunsAs, dropInitFile, lockDown, preparePrivateFolder, runningAsRoot, unprivilegedUser, type PrivateSecrets } from './private';

export type MariadbSandboxOptions = LocalServerOptions;

export interface MariadbSandbox extends LocalServer {
  /** Private servers: 0600 files holding the root password and a read-only account's (user dbops_check). */
  readonly secrets: PrivateSecrets | null;
  stop(): Promise<void>;
}

export async function startMariadbSandbox(options: MariadbSandboxOptions): Promise<MariadbSandbox> {
  const baseDir = path.resolve(options.baseDir);
  const datadir = path.join(baseDir, 'data');
  const socket = path.join(baseDir, 'mysqld.sock');
  const errorLog = path.join(baseDir, 'error.log');
  mkdirSync(baseDir, { recursive: true, mode: options.private ? 0o700 : 0o755 });
  const runAs = options.private ? unprivilegedUser(['mysql', 'nobody']) : null;
  const userArgs = runAs ? [`--user=${runAs.name}`] : runningAsRoot ? ['--user=root'] : [];
  const filesDir = options.private ? preparePrivateFolder(baseDir, runAs) : '';
  const initFile = options.private && options.restoredData ? adoptRestoredData(baseDir, datadir, runAs, options.restoredAdmin) : null;

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
    ...(initFile ? [`--init-file=${initFile}`] : []),
    ...(options.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(await findTool('mariadbd'), args, { stdio: 'ignore', env: childEnv() });
  let exited: number | null = null;
  child.on('exit', (code) => {
    exited = code ?? -1;
  });

  await waitUntilAccepting({
    name: 'mariadbd',
    errorLog,
    privateSocket: options.private ? socket : null,
    port,
    exited: () => (exited === null ? null : String(exited)),
    timeoutMs: options.startTimeoutMs ?? 60_000,
    onTimeout: () => child.kill('SIGKILL'),
  });
  dropInitFile(initFile);

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
      checkRunsAs(child.pid ?? -1, runAs, 'mariadbd');
      // A restored datadir that keeps its accounts: the restore comes in as its own account instead.
      if (!options.restoredAdmin) secrets = await lockDown(baseDir, socket, ['mariadb.sys', 'mysql']);
    } catch (error) {
      await stop();
      throw error;
    }
  }
  return { baseDir, datadir, socket, host: '127.0.0.1', port, pid: child.pid ?? -1, errorLog, secrets, stop };
}
