/**
 * Runs become long (an archive waits hours for an approval, a restore for a person, a
 * backup for its dump), so a worker upgrade meets runs the old code started. The histories
 * in ./histories were recorded by the previous version of the workflows, across every kind
 * of run and ending (completed, failed, cancelled, continued as new, terminated); each must
 * replay through the current workflow code without a determinism error.
 *
 * To record a fresh set: DBOPS_CAPTURE_HISTORIES=/tmp/histories npm test, then copy a
 * selection here (one per workflow and ending at least).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { installRuntimeLogger } from '../../src/workers/worker';
import { harness, quietLogger } from '../harness/context';

const DIR = path.join(__dirname, 'histories');

test('histories recorded by the previous workflow code replay through the current code', async () => {
  installRuntimeLogger(quietLogger);
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
  expect(files.length).toBeGreaterThanOrEqual(40);
  const histories = files.map((file) => ({ workflowId: file, history: historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8'))) }));
  const failures: string[] = [];
  const types = new Set<string>();
  for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: harness().workflowBundlePath } }, histories)) {
    types.add(result.workflowId.split('__')[0] ?? '');
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
  expect([...types].sort()).toEqual(
    expect.arrayContaining(['archiveWorkflow', 'disasterRecoveryDrillWorkflow', 'fullBackupWorkflow', 'incrementalBackupWorkflow', 'pointInTimeRestoreWorkflow', 'restorePlanWorkflow', 'retentionWorkflow', 'tableRestoreWorkflow']),
  );
}, 300_000);
