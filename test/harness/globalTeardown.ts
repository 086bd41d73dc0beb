import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { resolveTemporalCli } from '../../src/dev/temporalServer';
import type { HarnessHandles } from './state';

/**
 * Stops the shared servers. With DBOPS_CAPTURE_HISTORIES=DIR, first saves the history of
 * every workflow the run executed into DIR (one JSON file each): the material of the replay
 * test, which proves that new workflow code still replays what the old code recorded.
 */
export default async function globalTeardown(): Promise<void> {
  const handles = (globalThis as { __DBOPS_HARNESS__?: HarnessHandles }).__DBOPS_HARNESS__;
  if (!handles) return;
  const out = process.env.DBOPS_CAPTURE_HISTORIES;
  if (out && handles.temporal) {
    mkdirSync(out, { recursive: true });
    const client = handles.temporal.client;
    for await (const wf of client.workflow.list()) {
      // The CLI's JSON export is what Worker.runReplayHistories reads (historyFromJSON).
      const shown = spawnSync(
        resolveTemporalCli(),
        ['workflow', 'show', '--workflow-id', wf.workflowId, '--run-id', wf.runId, '--address', handles.temporal.address, '--namespace', 'default', '--output', 'json'],
        { encoding: 'utf8', maxBuffer: 512 << 20 },
      );
      if (shown.status !== 0) {
        process.stderr.write(`could not capture ${wf.workflowId}: ${shown.stderr}\n`);
        continue;
      }
      const name = `${wf.type}__${wf.status.name}__${wf.workflowId.replace(/[^A-Za-z0-9_.-]/g, '_')}__${wf.runId}.json`;
      writeFileSync(path.join(out, name), shown.stdout);
    }
  }
  await handles.temporal?.teardown().catch(() => undefined);
  await handles.mariadb?.stop().catch(() => undefined);
  await handles.mysql?.stop().catch(() => undefined);
  await handles.s3?.stop().catch(() => undefined);
  if (!process.env.DBOPS_KEEP_TEST_DIR) rmSync(handles.baseDir, { recursive: true, force: true });
}
