/**
 * Schedules from config, reconciled into Temporal Schedules: idempotent, deletes only
 * what it manages and the config dropped, keeps an operator's pause; a triggered schedule
 * starts the right workflow; with overlap SKIP a slow run never piles up.
 */
import { writeFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { stringify as toYaml, parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { applySchedules, existingSchedules } from '../../src/client/schedules';
import { parseConfig } from '../../src/config/load';
import { ManifestSchema } from '../../src/domain/manifest';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { makeTestConfig, rootConnection, runCli, temporalClient, withWorker, type TestSetup } from '../harness/context';

let client: Client;
let close: () => Promise<void>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The test config with a different schedules section (written to disk for the CLI too). */
function withSchedules(setup: TestSetup, schedules: unknown): TestSetup {
  const raw = parseYaml(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  raw.schedules = schedules;
  const text = toYaml(raw);
  writeFileSync(setup.configPath, text);
  return { ...setup, config: parseConfig(text, setup.configPath, setup.dir) };
}

async function dropOurSchedules(): Promise<void> {
  for (const s of await existingSchedules(client)) await client.schedule.getHandle(s.id).delete().catch(() => undefined);
}

beforeAll(async () => {
  ({ client, close } = await temporalClient());
  await dropOurSchedules();
});

afterAll(async () => {
  await dropOurSchedules();
  await close();
});

test('apply is idempotent, updates what changed, deletes what the config dropped, and keeps a pause', async () => {
  let setup = withSchedules(makeTestConfig('sched'), { defaultsFor: ['test'], timezone: 'Europe/Zurich', catchupWindow: '15m' });
  const first = await runCli(['schedules', 'apply', '--json', '--config', setup.configPath]);
  expect(JSON.parse(first.stdout)).toEqual({
    create: ['dbops/test/backup-differential', 'dbops/test/backup-full', 'dbops/test/backup-incremental', 'dbops/test/drill', 'dbops/test/drill-full', 'dbops/test/repo-verify', 'dbops/test/retention'],
    update: [],
    remove: [],
    unchanged: [],
  });
  const second = await applySchedules(client, setup.config);
  expect(second.create.concat(second.update).map((d) => d.id)).toEqual([]);
  expect(second.unchanged.sort()).toEqual(['dbops/test/backup-differential', 'dbops/test/backup-full', 'dbops/test/backup-incremental', 'dbops/test/drill', 'dbops/test/drill-full', 'dbops/test/repo-verify', 'dbops/test/retention']);
  const retention = await client.schedule.getHandle('dbops/test/retention').describe();
  expect(retention.action).toMatchObject({ workflowType: 'retentionWorkflow', workflowId: 'retention/test/scheduled' });
  expect(retention.spec.calendars?.length).toBeTruthy();
  const drill = await client.schedule.getHandle('dbops/test/drill').describe();
  expect(drill.action).toMatchObject({ workflowType: 'disasterRecoveryDrillWorkflow', workflowId: 'drill/test/scheduled' });
  const verify = await client.schedule.getHandle('dbops/test/repo-verify').describe();
  expect(verify.action).toMatchObject({ workflowType: 'repoVerifyWorkflow', workflowId: 'repo-verify/test/scheduled', args: [{ cluster: 'test', requestedBy: 'schedule dbops/test/repo-verify' }] });
  const full = await client.schedule.getHandle('dbops/test/backup-full').describe();
  expect(full.spec.timezone).toBe('Europe/Zurich');
  expect(full.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 15 * 60 * 1000 });
  expect(full.action).toMatchObject({ type: 'startWorkflow', workflowType: 'fullBackupWorkflow', workflowId: 'backup-full/test/scheduled' });

  const paused = await runCli(['schedules', 'pause', 'dbops/test/backup-full', '--reason', 'maintenance window', '--config', setup.configPath]);
  expect(paused.stdout.trim()).toBe('paused dbops/test/backup-full');

  // Someone else's schedule is never touched.
  await client.schedule.create({ scheduleId: 'team-x/report', spec: { intervals: [{ every: '1h' }] }, action: { type: 'startWorkflow', workflowType: 'whatever', taskQueue: 'elsewhere' }, state: { paused: true } });

  setup = withSchedules(setup, { entries: [{ cluster: 'test', action: 'backup-full', cron: '30 3 * * *' }] });
  const dry = await runCli(['schedules', 'apply', '--dry-run', '--config', setup.configPath]);
  expect(dry.stdout.split('\n').filter(Boolean).sort()).toEqual([
    'would remove dbops/test/backup-differential',
    'would remove dbops/test/backup-incremental',
    'would remove dbops/test/drill',
    'would remove dbops/test/drill-full',
    'would remove dbops/test/repo-verify',
    'would remove dbops/test/retention',
    'would update dbops/test/backup-full',
  ]);
  const third = await applySchedules(client, setup.config);
  expect({ update: third.update.map((d) => d.id), remove: third.remove.sort() }).toEqual({
    update: ['dbops/test/backup-full'],
    remove: ['dbops/test/backup-differential', 'dbops/test/backup-incremental', 'dbops/test/drill', 'dbops/test/drill-full', 'dbops/test/repo-verify', 'dbops/test/retention'],
  });
  const after = await client.schedule.getHandle('dbops/test/backup-full').describe();
  expect(after.state).toMatchObject({ paused: true, note: 'maintenance window' });
  expect(after.spec.timezone).toBe('UTC');
  await expect(client.schedule.getHandle('team-x/report').describe()).resolves.toBeTruthy();
  await client.schedule.getHandle('team-x/report').delete();
});

test('a triggered schedule starts the right workflow, which takes a verified backup', async () => {
  const conn = await rootConnection();
  await seedSampleDatabase(conn, { database: 'schedtest', customers: 10, orders: 100 });
  await conn.end();
  await dropOurSchedules();
  const setup = withSchedules(makeTestConfig('trigger', { databases: ['schedtest'] }), { entries: [{ cluster: 'test', action: 'backup-full', cron: '0 2 * * *' }] });
  await applySchedules(client, setup.config);
  await withWorker(setup.config, async () => {
    const triggered = await runCli(['schedules', 'trigger', 'dbops/test/backup-full', '--config', setup.configPath]);
    expect(triggered.stdout.trim()).toBe('triggered dbops/test/backup-full');
    let workflowId: string | null = null;
    for (let i = 0; i < 100 && !workflowId; i++) {
      const d = await client.schedule.getHandle('dbops/test/backup-full').describe();
      const a = d.info.recentActions[0]?.action;
      workflowId = a?.type === 'startWorkflow' ? a.workflow.workflowId : null;
      if (!workflowId) await sleep(100);
    }
    expect(workflowId).toMatch(/^backup-full\/test\/scheduled-/);
    const manifest = ManifestSchema.parse(await client.workflow.getHandle(workflowId!).result());
    expect(manifest).toMatchObject({ type: 'full', requestedBy: 'schedule dbops/test/backup-full', status: 'verified' });
  });
});

test('with overlap SKIP, a run slower than its interval never piles up', async () => {
  const conn = await rootConnection();
  await conn.query('DROP DATABASE IF EXISTS slowsched');
  await seedSampleDatabase(conn, { database: 'slowsched', customers: 50, orders: 4000 });
  for (let i = 0; i < 5; i++) {
    await conn.query('INSERT INTO slowsched.orders (customer_id, status, total, note, created_at) SELECT customer_id, status, total, note, created_at FROM slowsched.orders');
  }
  await conn.query('UPDATE slowsched.orders SET note = CONCAT(SHA2(id, 256), SHA2(id + 3, 256))');
  await conn.end();
  await dropOurSchedules(); // start from a fresh (unpaused) schedule
  // zstd -15 on poorly compressible notes: each backup takes seconds; the schedule fires every second.
  const setup = withSchedules(makeTestConfig('skip', { databases: ['slowsched'], compressionLevel: 15 }), {
    entries: [{ cluster: 'test', action: 'backup-full', every: '1s' }],
  });
  await withWorker(setup.config, async () => {
    await applySchedules(client, setup.config);
    const handle = client.schedule.getHandle('dbops/test/backup-full');
    let maxRunning = 0;
    for (let i = 0; i < 25; i++) {
      const d = await handle.describe();
      maxRunning = Math.max(maxRunning, d.info.runningActions.length);
      await sleep(250);
    }
    const d = await handle.describe();
    await handle.delete();
    expect(maxRunning).toBe(1);
    expect(d.info.numActionsSkippedOverlap).toBeGreaterThanOrEqual(3);
    // Let the run that is still going finish inside the worker's lifetime.
    for (const r of d.info.runningActions) await client.workflow.getHandle(r.workflow.workflowId, r.workflow.firstExecutionRunId).result();
  });
});
