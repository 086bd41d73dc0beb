/**
 * Monitoring and retention against the real servers:
 * - a `dbops worker` process serves /metrics: dbops's metrics after a backup and a failure,
 *   and the Temporal SDK runtime's;
 * - failures, approvals and their severities reach real HTTP receivers on loopback, in the
 *   generic and the Slack format, once per cooldown;
 * - retention on a real repository: the dry run lists and touches nothing, the real run
 *   waits for approval, deletes old chains and keeps what the window needs, and what is
 *   left still validates and plans a restore.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { explainFailure, startBackup, waitForManifest } from '../../src/client/backups';
import { LocalRepository } from '../../src/activities/repository';
import type { BackupType, Manifest } from '../../src/domain/manifest';
import { freePort } from '../../src/sandbox/mariadb';
import { harness, makeTestConfig, rootConnection, runCli, spawnCliWorker, temporalClient, withWorker, type TestSetup } from '../harness/context';

const DB = 'montest';

interface Received {
  path: string;
  body: Record<string, unknown>;
}

let receiver: Server;
let received: Received[] = [];
let receiverPort = 0;
let client: Client;
let closeClient: () => Promise<void>;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  receiverPort = (receiver.address() as { port: number }).port;
  ({ client, close: closeClient } = await temporalClient());
  const conn = await rootConnection();
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await conn.query(`CREATE DATABASE ${DB}`);
  await conn.query(`CREATE TABLE ${DB}.events (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40), created_at DATETIME DEFAULT NOW(), KEY (created_at))`);
  await conn.query(`INSERT INTO ${DB}.events (what) VALUES ('a'), ('b'), ('c')`);
  await conn.end();
});

afterAll(async () => {
  await closeClient();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  const conn = await rootConnection();
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await conn.end();
});

const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

test('a worker process serves /metrics; failures and approvals reach webhooks once per cooldown', async () => {
  const metricsPort = await freePort();
  const setup = makeTestConfig('monitoring', {
    databases: [DB],
    mutate: (raw) => {
      const clusters = raw.clusters as Array<Record<string, unknown>>;
      const broken = { ...clusters[0], name: 'broken', password: { file: path.join(harness().baseDir, 'wrong.password') } };
      clusters.push(broken);
      raw.metrics = { listen: `127.0.0.1:${metricsPort}` };
      raw.notifications = {
        cooldown: '1h',
        webhooks: [
          { name: 'ops', url: `http://127.0.0.1:${receiverPort}/ops`, format: 'json', minSeverity: 'info' },
          { name: 'chat', url: `http://127.0.0.1:${receiverPort}/slack`, format: 'slack', minSeverity: 'warning' },
        ],
      };
    },
  });
  writeFileSync(path.join(harness().baseDir, 'wrong.password'), 'not-the-password\n', { mode: 0o600 });
  received = [];
  const worker = spawnCliWorker(setup.configPath, path.join(setup.dir, 'worker.log'));
  try {
    const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    await until('the metrics endpoint', () => scrape().then(() => true, () => false));

    const manifest = await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest' })).catch((error: unknown) => {
      throw new Error(`the full backup failed: ${explainFailure(error)} (worker log: ${setup.dir}/worker.log)`);
    });
    for (let i = 0; i < 2; i++) {
      const failed = await startBackup(client, setup.config, 'full', { cluster: 'broken', requestedBy: 'jest' }, new Date(Date.now() + (i + 1) * 1000));
      await expect(failed.result()).rejects.toThrow();
    }

    const text = await scrape();
    expect(text).toContain('dbops_backup_runs_total{cluster="test",type="full",outcome="success"} 1');
    expect(text).toContain('dbops_backup_runs_total{cluster="broken",type="full",outcome="failure"} 2');
    expect(text).toContain('dbops_backup_runs_total{cluster="test",type="incremental",outcome="failure"} 0');
    expect(text).toContain(`dbops_backup_last_success_timestamp_seconds{cluster="test",type="full"} ${Date.parse(manifest.finishedAt) / 1000}`);
    expect(text).toMatch(/dbops_backup_duration_seconds_count\{cluster="test",type="full"\} 1/);
    expect(text).toMatch(/dbops_repository_used_bytes\{cluster="test"\} [1-9]\d*/);
    expect(text).toMatch(/dbops_backup_compression_saving_ratio\{cluster="test",type="full"\} 0\.\d+/);
    expect(text).toMatch(/^temporal_\w+/m); // the SDK runtime's own metrics, on the same endpoint

    // Two failures within the cooldown: one critical notification per webhook.
    await until('the failure notifications', () => received.filter((r) => JSON.stringify(r.body).includes('backup-failed')).length >= 2);
    await new Promise((r) => setTimeout(r, 500));
    const failures = received.filter((r) => JSON.stringify(r.body).includes('backup-failed'));
    expect(failures.map((r) => r.path).sort()).toEqual(['/ops', '/slack']);
    const generic = failures.find((r) => r.path === '/ops')?.body;
    expect(generic).toMatchObject({ source: 'dbops', severity: 'critical', event: 'backup-failed', cluster: 'broken', workflowId: expect.stringMatching(/^backup-full\/broken\//) });
    expect(String(generic?.message)).toMatch(/authentication failed/);
    const slack = failures.find((r) => r.path === '/slack')?.body as { text: string; attachments: Array<{ color: string }> };
    expect(slack.text).toMatch(/CRITICAL.*backup-failed on broken/);
    expect(slack.attachments[0]?.color).toBe('#e01e5a');

    // An approval request is info: the ops webhook gets it, the chat one (warning and up) does not.
    received = [];
    const start = await runCli(['archive', 'run', '--cluster', 'test', '--database', DB, '--table', 'events', '--where', 'id < 3', '--to', 'events_history', '--json', '--config', setup.configPath]);
    expect(start.stderr).toBe('');
    const { workflowId } = JSON.parse(start.stdout) as { workflowId: string };
    await until('the approval notification', () => received.some((r) => r.body.event === 'approval-requested'));
    expect(received.map((r) => [r.path, r.body.event])).toEqual([['/ops', 'approval-requested']]);
    await until('the approval gauge', async () => /dbops_approvals_waiting\{cluster="test"\} 1/.test(await scrape()));
    const rejected = await runCli(['approvals', 'reject', workflowId, '--as', 'alice', '--reason', 'not today', '--config', setup.configPath]);
    expect(rejected.code).toBe(0);
    await client.workflow.getHandle(workflowId).result();
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
}, 180_000);

describe('retention on a real repository', () => {
  let setup: TestSetup;
  const made: Manifest[] = [];
  let tick = 0;
  const backup = async (type: BackupType) => {
    tick += 1;
    const m = await waitForManifest(await startBackup(client, setup.config, type, { cluster: 'test', requestedBy: 'jest' }, new Date(Date.now() + tick * 1000)));
    made.push(m);
    return m;
  };
  const write = async (what: string) => {
    const conn = await rootConnection();
    await conn.query(`INSERT INTO ${DB}.events (what) VALUES (?)`, [what]);
    await conn.end();
  };

  test('dry run lists, the real run waits for approval, deletes old chains, keeps what restores need', async () => {
    setup = makeTestConfig('retention', {
      databases: [DB],
      mutate: (raw) => {
        raw.retention = {
          // Everything is minutes old: age 0 makes it all eligible, so only the rules decide.
          policies: { full: { days: 0, minCount: 1 }, incremental: { days: 0, minCount: 0 }, differential: { days: 0, minCount: 0 } },
          pointInTimeWindow: '1ms',
          approvalAbove: 1,
        };
        (raw.clusters as Array<Record<string, unknown>>)[0]!.approvers = { 'retention-delete': ['alice'] };
      },
    });
    await withWorker(setup.config, async () => {
      const full1 = await backup('full');
      await write('after full1');
      const inc1 = await backup('incremental');
      await write('before full2');
      const full2 = await backup('full');
      await write('after full2');
      const inc2 = await backup('incremental');
      const repo = new LocalRepository(setup.config.repository.path);
      const ids = async () => (await repo.list('test')).map((b) => b.manifest.id);
      // full2 first closed full1's chain with an incremental up to its snapshot.
      const closing = (await repo.list('test')).map((b) => b.manifest).find((m) => m.parentId === inc1.id)!;
      expect(closing.reason).toBe(`closes the chain before full ${full2.id}`);
      expect(await ids()).toEqual([full1.id, inc1.id, full2.id, closing.id, inc2.id]); // by start time

      const dry = await runCli(['retention', 'run', '--cluster', 'test', '--dry-run', '--config', setup.configPath]);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(new RegExp(`would delete  ${full1.id}\\s+full`));
      expect(dry.stdout).toMatch(new RegExp(`would delete  ${inc1.id}\\s+incremental`));
      expect(dry.stdout).toMatch(new RegExp(`would delete  ${closing.id}\\s+incremental`));
      expect(dry.stdout).toMatch(new RegExp(`keep\\s+${full2.id}\\s+full`));
      expect(dry.stdout).toMatch(new RegExp(`keep\\s+${inc2.id}\\s+incremental`));
      expect(await ids()).toEqual([full1.id, inc1.id, full2.id, closing.id, inc2.id]); // by start time

      // Three deletions > approvalAbove 1: a person decides.
      const started = await runCli(['retention', 'run', '--cluster', 'test', '--json', '--config', setup.configPath]);
      const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
      const handle = client.workflow.getHandle(workflowId);
      await until('the approval request', async () => (await runCli(['approvals', 'show', workflowId, '--json', '--config', setup.configPath])).stdout.includes('"pending"'));
      expect(await ids()).toHaveLength(5);
      expect((await runCli(['approvals', 'approve', workflowId, '--as', 'alice', '--reason', 'CHG-1', '--config', setup.configPath])).code).toBe(0);
      const result = (await handle.result()) as { status: string; deleted: Array<{ id: string }> };
      expect(result.status).toBe('done');
      expect(result.deleted.map((d) => d.id)).toEqual([closing.id, inc1.id, full1.id]); // dependents first

      expect(await ids()).toEqual([full2.id, inc2.id]);
      const index = JSON.parse((await import('node:fs')).readFileSync(path.join(setup.config.repository.path, 'test', 'full', 'index.json'), 'utf8')) as { backups: Array<{ id: string }> };
      expect(index.backups.map((b) => b.id)).toEqual([full2.id]);
      const valid = await runCli(['backup', 'validate', full2.id, '--config', setup.configPath]);
      expect(valid.code).toBe(0);
      const plan = await runCli(['restore', 'plan', '--cluster', 'test', '--database', DB, '--to', 'latest', '--json', '--config', setup.configPath]);
      expect(plan.code).toBe(0);
      expect(plan.stdout).toContain(full2.id);
      expect(plan.stdout).toContain(inc2.id);
    });
  }, 180_000);
});
