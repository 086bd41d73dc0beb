/**
 * One mysql / mariadb client session reading SQL from stdin: how every restore step that
 * pipes SQL into a server runs it (the dump load, the binlog replay, each chunk of a
 * parallel load). Credentials come from the defaults file, never argv.
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { childEnv } from '../tools/tools';

export interface ClientSession {
  stdin: Writable;
  /** Its exit status and stderr. */
  done: Promise<{ code: number | null; stderr: string }>;
  kill: () => void;
}

/**
 * `init`: session settings (`SESSION x=y` items) run at connect, after
 * foreign_key_checks=0; `binary`: the client reads and sends bytes without conversion.
 */
export function clientSession(tool: string, defaultsFile: string, init: string[], options: { binary?: boolean } = {}): ClientSession {
  const args = [`--defaults-extra-file=${defaultsFile}`, '--binary-mode', '--batch', ...(options.binary ? ['--default-character-set=binary'] : [])];
  const child = spawn(tool, [...args, `--init-command=SET ${['SESSION foreign_key_checks=0', ...init].join(', ')}`], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: childEnv(),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('error', (e) => resolve({ code: -1, stderr: e.message }));
    child.on('close', (code) => resolve({ code, stderr }));
  });
  // A client that dies early closes its stdin: surface that as its own error, not EPIPE.
  child.stdin.on('error', () => undefined);
  return { stdin: child.stdin, done, kill: () => child.kill('SIGKILL') };
}
