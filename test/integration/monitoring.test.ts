/**
 * Monitoring and retention against the real servers:
 * - a `dbops worker` process serves /metrics: dbops's metrics after a backup and a failure,
 *   and the Temporal SDK runtime's;
 * - failures, approvals and their severities reach real HTTP receivers on loopback, in the
 *   generic and the Slack format, once per cooldown; a backup refused because the cluster
 *   is busy counts as skipped (not failed) and notifies a warning;
 * - retention deletes nothing while a restore or drill of the cluster runs, and a webhook
 *   that is down (its URL a secret reference) does not keep it from deleting;
 * - retention on a real repository: the dry run lists and touches nothing, the real run
 *   waits for approval, deletes old chains and keeps what the window needs, and what is
 *   left still validates and plans a restore.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { explainFailure, startBackup, waitForManifest } from '../../src/client/backups';
import { openRepository } from '../../src/repository';
import { createRetentionActivities } from '../../src/activities/retention';
import { buildActivityDeps } from '../../src/activities';
import { SA_CLUSTER, SA_OPERATION } from '../../src/domain/searchAttributes';
import type { BackupType, Manifest } from '../../src/domain/manifest';
import { freePort } from '../../src/mysql/servers/local';
import { harness, holdClusterLock, makeTestConfig, quietLogger, rootConnection, runCli, spawnCliWorker, temporalClient, withWorker, type TestSetup } from '../harness/context';

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
      // /down/… plays a webhook that is down: it sees the request and answers 500.
      res.writeHead((req.url ?? '').startsWith('/down/') ? 500 : 204).end();
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

/** Runs Debian's prometheus (a private one) scraping the worker every second, with the dbops rules. */
async function withPrometheus(
  metricsPort: number,
  dir: string,
  fn: (query: (q: string) => Promise<string[]>, rules: () => Promise<Array<{ name: string; health: string; lastEvaluation: string }>>) => Promise<void>,
): Promise<void> {
  const port = await freePort();
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(path.join(__dirname, '..', '..', 'monitoring', 'prometheus', 'dbops-rules.yml'))}]`,
      'scrape_configs:',
      `  - { job_name: dbops, static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }] }`,
    ].join('\n') + '\n',
  );
  const child = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const api = async (p: string) => (await (await fetch(`http://127.0.0.1:${port}${p}`)).json()) as { data: unknown };
  try {
    await until('prometheus', () => fetch(`http://127.0.0.1:${port}/-/ready`).then((r) => r.ok, () => false), 30_000);
    await fn(
      async (q) => ((await api(`/api/v1/query?query=${encodeURIComponent(q)}`)).data as { result: Array<{ value: [number, string] }> }).result.map((r) => r.value[1]),
      async () => ((await api('/api/v1/rules')).data as { groups: Array<{ rules: Array<{ name: string; health: string; lastEvaluation: string }> }> }).groups.flatMap((g) => g.rules),
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

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

    // A real Prometheus scrapes the endpoint and evaluates the alert rules on the live series.
    await withPrometheus(metricsPort, setup.dir, async (query, rules) => {
      await until('the first scrape', async () => (await query('dbops_backup_runs_total{cluster="test",type="full",outcome="success"}')).length > 0, 30_000);
      expect(await query('sum(dbops_backup_runs_total{cluster="broken",outcome="failure"})')).toEqual(['2']);
      await until('a rule evaluation', async () => (await rules()).every((r) => r.lastEvaluation !== '0001-01-01T00:00:00Z'), 30_000);
      const evaluated = await rules();
      expect(evaluated.length).toBeGreaterThanOrEqual(8);
      expect(evaluated.filter((r) => r.health !== 'ok')).toEqual([]);
    });

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

    // A full while another operation holds the cluster is refused. That is a skipped run
    // (warning to both webhooks, which name the run holding the cluster), not a failure;
    // once the holder has ended, the next full takes the cluster over.
    received = [];
    const holding = await holdClusterLock(client, setup.config, 'test');
    const busyRun = await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest' }, new Date(Date.now() + 11_000));
    const refused = await busyRun.result().then(() => null, (error: unknown) => error);
    expect(explainFailure(refused)).toMatch(/is busy/);
    await holding.terminate('test: the holder ended');
    await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest' }, new Date(Date.now() + 12_000)));
    const both = [busyRun, holding];
    const busyText = await scrape();
    expect(busyText).toContain('dbops_backup_runs_total{cluster="test",type="full",outcome="success"} 2');
    expect(busyText).toContain('dbops_backup_runs_total{cluster="test",type="full",outcome="skipped"} 1');
    expect(busyText).toContain('dbops_backup_runs_total{cluster="test",type="full",outcome="failure"} 0');
    await until('the skipped notifications', () => received.filter((r) => JSON.stringify(r.body).includes('backup-skipped')).length >= 2);
    const skipped = received.filter((r) => JSON.stringify(r.body).includes('backup-skipped'));
    expect(skipped.map((r) => r.path).sort()).toEqual(['/ops', '/slack']);
    const holder = both.find((h) => h.workflowId !== skipped.find((r) => r.path === '/ops')?.body.workflowId)?.workflowId ?? '?';
    expect(skipped.find((r) => r.path === '/ops')?.body).toMatchObject({ severity: 'warning', event: 'backup-skipped', cluster: 'test' });
    expect(String(skipped.find((r) => r.path === '/ops')?.body.message)).toContain(`full backup ${holder} has held it since`);

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
        // The storage alerts go to a webhook that is down; its URL is a secret reference.
        raw.notifications = { webhooks: [{ name: 'down', url: { env: 'DBOPS_TEST_DOWN_WEBHOOK' }, minSeverity: 'info', events: ['storage-high', 'storage-retention-result'] }] };
      },
    });
    process.env.DBOPS_TEST_DOWN_WEBHOOK = `http://127.0.0.1:${receiverPort}/down/SECRET-TOKEN`;
    await withWorker(setup.config, async () => {
      const full1 = await backup('full');
      await write('after full1');
      const inc1 = await backup('incremental');
      await write('before full2');
      const full2 = await backup('full');
      await write('after full2');
      const inc2 = await backup('incremental');
      const repo = openRepository(setup.config).catalog;
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

      // A restore of the cluster is running (no worker polls its queue, so it stays running):
      // retention deletes nothing and says why.
      const reader = await client.workflow.start('pitrRestoreWorkflow', {
        taskQueue: `nobody-${Date.now()}`,
        workflowId: `restore-pitr/test/${DB}/retention-blocker-${Date.now()}`,
        args: [],
        typedSearchAttributes: [
          { key: SA_CLUSTER, value: 'test' },
          { key: SA_OPERATION, value: 'restore' },
        ],
      });
      try {
        const query = `DbopsCluster = 'test' AND DbopsOperation IN ('restore', 'drill') AND ExecutionStatus = 'Running'`;
        await until('the running restore in visibility', async () => {
          for await (const w of client.workflow.list({ query })) if (w.workflowId === reader.workflowId) return true;
          return false;
        });
        const held = await createRetentionActivities(buildActivityDeps(setup.config, quietLogger)).deleteBackups({ cluster: 'test', ids: [closing.id, inc1.id, full1.id] });
        const why = `restore/drill ${reader.workflowId} is running; retention tries again on its next run`;
        expect(held.deleted).toEqual([]);
        expect(held.skipped).toEqual([closing.id, inc1.id, full1.id].map((id) => ({ id, why })));
        expect(await ids()).toEqual([full1.id, inc1.id, full2.id, closing.id, inc2.id]);
      } finally {
        await reader.terminate('test over');
      }
      await until('the restore to leave the running list', async () => {
        for await (const w of client.workflow.list({ query: `WorkflowId = '${reader.workflowId}' AND ExecutionStatus = 'Running'` })) if (w) return false;
        return true;
      });

      // From now on storage is at 85 % of a limit (warning): the storage alerts go out, to a
      // webhook that answers 500, and retention deletes all the same. (The in-process worker
      // reads this config object.)
      const used = (await repo.list('test')).reduce((n, b) => n + b.manifest.artifacts.reduce((m, a) => m + a.size, 0), 0);
      setup.config.retention.maxBytes = Math.ceil(used / 0.85);
      received = [];

      // Three deletions > approvalAbove 1: a person decides.
      const started = await runCli(['retention', 'run', '--cluster', 'test', '--json', '--config', setup.configPath]);
      const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
      const handle = client.workflow.getHandle(workflowId);
      await until('the approval request', async () => (await runCli(['approvals', 'show', workflowId, '--json', '--config', setup.configPath])).stdout.includes('"pending"'));
      expect(await ids()).toHaveLength(5);
      expect((await runCli(['approvals', 'approve', workflowId, '--as', 'alice', '--reason', 'CHG-1', '--config', setup.configPath])).code).toBe(0);
      const result = (await handle.result()) as { status: string; deleted: Array<{ id: string }>; storageAfter: { usedBytes: number; level: string } };
      expect(result.status).toBe('done');
      expect(result.deleted.map((d) => d.id)).toEqual([closing.id, inc1.id, full1.id]); // dependents first
      expect(result.storageAfter.usedBytes).toBeLessThan(used);
      // Both storage notifications were tried (and refused by the webhook), without stopping the run.
      const tried = received.filter((r) => r.path === '/down/SECRET-TOKEN').map((r) => r.body.event);
      expect(tried).toContain('storage-high');
      expect(tried).toContain('storage-retention-result');
      const outcome = received.find((r) => r.body.event === 'storage-retention-result')?.body;
      expect(String(outcome?.message)).toMatch(new RegExp(`^retention of test deleted 3 of 3 backup\\(s\\), freed .*; storage now .* of .*`));
      const history = JSON.stringify((await handle.fetchHistory()).events);
      expect(history).not.toContain('SECRET-TOKEN');

      expect(await ids()).toEqual([full2.id, inc2.id]);
      const index = JSON.parse((await import('node:fs')).readFileSync(path.join(setup.config.repository.path!, 'test', 'full', 'index.json'), 'utf8')) as { backups: Array<{ id: string }> };
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
