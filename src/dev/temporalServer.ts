/** The Temporal CLI dev server (with its Web UI), as the project installs it. */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { projectRoot as findProjectRoot } from '../tools/tools';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/searchAttributes';

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
  namespace?: string;
  port?: number;
  ui?: boolean;
  uiPort?: number;
  /** Persist the dev server's state in this SQLite file (default: in memory). */
  dbFilename?: string;
}

export async function startTemporalDevServer(options: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: resolveTemporalCli() },
      namespace: options.namespace ?? 'default',
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.ui ? { ui: true } : {}),
      ...(options.uiPort !== undefined ? { uiPort: options.uiPort } : {}),
      ...(options.dbFilename !== undefined ? { dbFilename: options.dbFilename } : {}),
      searchAttributes: [...ALL_SEARCH_ATTRIBUTES],
      log: { format: 'json', level: 'error' },
    },
  });
}
