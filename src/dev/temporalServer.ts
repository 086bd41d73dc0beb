/**
 * The Temporal CLI dev server (with its Web UI), as the project installs it. Started here
 * rather than through the SDK's ephemeral-server helper because that helper gives the
 * server a fixed five seconds to answer, which a busy two-core CI machine misses now and
 * then; a dev server that is slow to start is not a failure.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/searchAttributes';
import { execa, stopperOf, type ResultPromise } from '../tools/execa';
import { childEnv, projectRoot as findProjectRoot } from '../tools/tools';
import { freePort } from '../mysql/servers/local';

const projectRoot = findProjectRoot();

/** $TEMPORAL_CLI, else what scripts/setup.sh recorded, else .tools/temporal, else PATH. */
export function resolveTemporalCli(): string {
  const candidates: string[] = [];
  if (process.env.TEMPORAL_CLI) candidates.push(process.env.TEMPORAL_CLI);
  const recorded = path.join(projectRoot, '.tools', 'temporal-cli-path');
  if (existsSync(recorded)) candidates.push(readFileSync(recorded, 'utf8').trim());
  candidates.push(path.join(projectRoot, '.tools', 'temporal', 'bin', 'temporal'));
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) candidates.push(path.join(dir, 'temporal'));
  const found = candidates.find((c) => c !== '' && existsSync(c));
  if (!found) {
    throw new Error('Temporal CLI not found: run `bash scripts/setup.sh` or set TEMPORAL_CLI=/path/to/temporal');
  }
  return found;
}

export interface DevServerOptions {
  port?: number;
  ui?: boolean;
  uiPort?: number;
  /** Persist the dev server's state in this SQLite file (default: in memory). */
  dbFilename?: string;
  /** How long the server may take to answer (default 120 s). */
  startupTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  /** The Web UI (null when started headless). */
  uiUrl: string | null;
  connection: Connection;
  client: Client;
  /** For workers in the same process. */
  nativeConnection: NativeConnection;
  teardown(): Promise<void>;
}

export async function startTemporalDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  // A free port can be taken by someone else before the server binds it: with ports of our
  // choosing, a server that exits at start is tried again on fresh ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      const chosenByUs = options.port === undefined && options.uiPort === undefined;
      if (!(error instanceof ExitedAtStart) || !chosenByUs || attempt >= 3) throw error;
    }
  }
}

class ExitedAtStart extends Error {}

async function startOnce(options: DevServerOptions): Promise<DevServer> {
  const port = options.port ?? (await freePort());
  const uiPort = options.uiPort ?? (options.port === undefined ? await freePort() : port + 1000);
  const address = `127.0.0.1:${port}`;
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--namespace', 'default',
    '--log-format', 'json',
    '--log-level', 'error',
    ...ALL_SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${a.type === 'BOOL' ? 'Bool' : 'Keyword'}`]),
    ...(options.dbFilename !== undefined ? ['--db-filename', options.dbFilename] : []),
    ...(options.ui ? ['--ui-port', String(uiPort)] : ['--headless']),
  ];
  const child: ResultPromise = execa(resolveTemporalCli(), args, { env: childEnv(), extendEnv: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', reject: false, cleanup: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const { exited, stop } = stopperOf(child);

  const deadline = Date.now() + (options.startupTimeoutMs ?? 120_000);
  let lastError: unknown = null;
  for (;;) {
    if (exited()) {
      const lines = stderr.trim().split('\n');
      const why = lines.filter((l) => /panic|fatal|error|bind|address already in use/i.test(l)).slice(0, 3);
      throw new ExitedAtStart(`the Temporal dev server exited at start: ${(why.length ? why : lines.slice(-3)).join(' ').slice(0, 1000) || 'no output'}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: '2 seconds' });
      await connection.workflowService.getSystemInfo({});
      const client = new Client({ connection, namespace: 'default' });
      const nativeConnection = await NativeConnection.connect({ address });
      return {
        address,
        uiUrl: options.ui ? `http://127.0.0.1:${uiPort}` : null,
        connection,
        client,
        nativeConnection,
        teardown: async () => {
          await connection.close().catch(() => undefined);
          await nativeConnection.close().catch(() => undefined);
          await stop();
        },
      };
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Temporal dev server at ${address} did not answer within ${Math.round((options.startupTimeoutMs ?? 120_000) / 1000)} s: ${(lastError as Error | null)?.message ?? 'no answer'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
