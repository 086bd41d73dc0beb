/** What the throwaway servers (MariaDB, MySQL) have in common, and the helpers they share. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createConnection } from 'mysql2/promise';
import { childEnv } from '../../tools/tools';

/** A server dbops started in a folder of its own, on a free port and a private socket. */
export interface LocalServer {
  readonly baseDir: string;
  readonly datadir: string;
  readonly socket: string;
  readonly host: string;
  readonly port: number;
  /** mysqld's own pid (as its pid file says), not a wrapper's. */
  readonly pid: number;
  readonly errorLog: string;
  stop(): Promise<void>;
}

/** How a throwaway server is started. */
export interface LocalServerOptions {
  /** Folder for datadir, socket, logs; created if missing, reused if already initialised. */
  baseDir: string;
  port?: number;
  serverId?: number;
  /** Extra server options, e.g. ['--innodb-buffer-pool-size=1G']. */
  extraArgs?: string[];
  startTimeoutMs?: number;
  /**
   * A server nobody else can reach (a drill's throwaway copy of production data): no TCP,
   * the socket in a 0700 folder, secure_file_priv an empty folder, run as an unprivileged OS
   * user when the worker is root, and a random root password (in a 0600 file, see
   * `secrets`) set before anything else connects.
   */
  private?: boolean;
  /**
   * The datadir holds a restored copy of another server (a physical backup): it is given
   * to the server's OS user, and root@localhost is reset to the fresh-install state (no
   * password, all privileges) through an init file for the lock-down that follows.
   * Only with `private` (the socket nobody else can reach).
   */
  restoredData?: boolean;
  /**
   * With `restoredData`: keep the copy's accounts as they are (a datadir for a new server)
   * and let the restore in through this account, created by the init file, instead of the
   * lock-down. The restore drops it before it stops the server.
   */
  restoredAdmin?: { user: string; password: string };
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

/** Is a process with this pid alive (and ours to signal)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The last lines of a server's log, for an error message. */
export function tail(file: string, lines = 15): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '(no log)';
}

/** Runs a setup command (initialise a datadir, …) with its output in the log; rejects with the log's tail. */
export function runToCompletion(command: string, args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], env: childEnv() });
    child.on('error', (e) => {
      closeSync(fd);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      closeSync(fd);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}; ${logFile}:\n${tail(logFile)}`));
    });
  });
}

/**
 * Waits until a server just started accepts root: over TCP on its own port (proves that this
 * process, not an older one on the socket, is up), or over the socket for a private server,
 * which has no TCP. Throws with the error log's tail when it exits or the deadline passes.
 */
export async function waitUntilAccepting(server: {
  name: string;
  errorLog: string;
  privateSocket: string | null;
  port: number;
  exited: () => string | null;
  timeoutMs: number;
  onTimeout: () => void;
}): Promise<void> {
  const deadline = Date.now() + server.timeoutMs;
  for (;;) {
    const exited = server.exited();
    if (exited !== null) throw new Error(`${server.name} exited with ${exited} during start; error log ${server.errorLog}:\n${tail(server.errorLog)}`);
    try {
      const conn = await createConnection(server.privateSocket ? { socketPath: server.privateSocket, user: 'root' } : { host: '127.0.0.1', port: server.port, user: 'root' });
      await conn.end();
      return;
    } catch {
      if (Date.now() > deadline) {
        server.onTimeout();
        const where = server.privateSocket ?? `127.0.0.1:${server.port}`;
        throw new Error(`${server.name} did not accept connections on ${where} within ${server.timeoutMs} ms; error log ${server.errorLog}:\n${tail(server.errorLog)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
