/**
 * A private, throwaway MariaDB server in a folder of its own: its datadir, socket, port,
 * binlog (ROW) and server id. Used by `dbops dev`, by the tests, and later by restores
 * and DR drills. It never touches a system service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { findTool } from '../activities/tools';

export interface MariadbSandboxOptions {
  /** Folder for datadir, socket, logs; created if missing, reused if already initialised. */
  baseDir: string;
  port?: number;
  serverId?: number;
  /** Extra mariadbd options, e.g. ['--innodb-buffer-pool-size=1G']. */
  extraArgs?: string[];
  startTimeoutMs?: number;
}

export interface MariadbSandbox {
  readonly baseDir: string;
  readonly datadir: string;
  readonly socket: string;
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly errorLog: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function runToCompletion(command: string, args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
    child.on('error', (e) => {
      closeSync(fd);
      reject(e);
    });
    child.on('exit', (code) => {
      closeSync(fd);
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code}; see ${logFile}`));
    });
  });
}

/** Is a process with this pid alive (and ours to signal)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export async function startMariadbSandbox(options: MariadbSandboxOptions): Promise<MariadbSandbox> {
  const baseDir = path.resolve(options.baseDir);
  const datadir = path.join(baseDir, 'data');
  const socket = path.join(baseDir, 'mysqld.sock');
  const errorLog = path.join(baseDir, 'error.log');
  mkdirSync(baseDir, { recursive: true });
  const userArgs = runningAsRoot ? ['--user=root'] : [];

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
  const port = options.port ?? (await freePort());
  const args = [
    '--no-defaults',
    ...userArgs,
    `--datadir=${datadir}`,
    `--socket=${socket}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
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
  const child: ChildProcess = spawn(await findTool('mariadbd'), args, { stdio: 'ignore' });
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
      const conn = await createConnection({ host: '127.0.0.1', port, user: 'root' });
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

  return { baseDir, datadir, socket, host: '127.0.0.1', port, pid: child.pid ?? -1, errorLog, stop };
}
