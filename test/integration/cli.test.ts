/**
 * The dbops command as an operator uses it: JSON on stdout, one line on stderr and a
 * non-zero exit on failure, bad input refused before anything starts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Long from 'long';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { ManifestSchema } from '../../src/domain/manifest';
import { harness, makeTestConfig, products, rootConnection, runCli, temporalClient, withWorker } from '../harness/context';

const DB = 'clitest';

beforeAll(async () => {
  const conn = await rootConnection();
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await seedSampleDatabase(conn, { database: DB, customers: 20, orders: 100 });
  await conn.end();
});

test('backup full --wait --json prints the verified manifest; backup list --json lists it', async () => {
  const setup = makeTestConfig('cli', { databases: [DB] });
  const full = await withWorker(setup.config, () => runCli(['backup', 'full', '--cluster', 'test', '--wait', '--json', '--config', setup.configPath]));
  expect(full.stderr).toBe('');
  expect(full.code).toBe(0);
  const manifest = ManifestSchema.parse(JSON.parse(full.stdout));
  expect(manifest.tables.find((t) => t.table === 'orders')?.rows).toBe(100);

  const list = await runCli(['backup', 'list', '--cluster', 'test', '--json'], { DBOPS_CONFIG: setup.configPath });
  expect(list.code).toBe(0);
  expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((m) => m.id)).toEqual([manifest.id]);

  const human = await runCli(['backup', 'list', '--cluster', 'test', '--config', setup.configPath]);
  expect(human.stdout).toContain(manifest.id);
  expect(human.stdout).toContain('SNAPSHOT');
});

test('a bad config fails with one line naming each bad field, and touches nothing', async () => {
  const { dir } = makeTestConfig('badcfg');
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    ['repository:', '  path: ./repo', 'clusters:', '  - name: Prod DB', '    host: db1', '    port: "3306"', '    user: dbops', '    password: hunter2', ''].join('\n'),
  );
  const result = await runCli(['backup', 'list', '--cluster', 'x', '--config', bad]);
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain('clusters[0].name');
  expect(lines[0]).toContain('clusters[0].port');
  expect(lines[0]).toContain('clusters[0].password: literal secrets are not accepted');
  expect(result.stderr).not.toContain('hunter2');
});

test('an unknown cluster is refused before a workflow starts', async () => {
  const setup = makeTestConfig('unknown');
  const result = await runCli(['backup', 'full', '--cluster', 'nope', '--config', setup.configPath]);
  expect(result.code).toBe(1);
  expect(result.stderr.trim()).toBe('dbops: unknown cluster "nope": configured clusters are test');
});

test('the slow-query killer on a cluster without a queryKiller section is refused before a workflow starts, naming the fix', async () => {
  const setup = makeTestConfig('nokiller');
  const result = await runCli(['ops', 'kill-slow', '--cluster', 'test', '--config', setup.configPath]);
  expect(result.code).toBe(1);
  expect(result.stderr.trim()).toBe('dbops: cluster test has no queryKiller in the config: add clusters[].queryKiller (e.g. { busyTime: 60s, dryRun: true }) to run the slow-query killer there');
});

test('a wrong password fails the backup at once, not after retries, saying what to fix', async () => {
  const setup = makeTestConfig('authfail', { databases: [DB] });
  const wrong = path.join(setup.dir, 'wrong.password');
  writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
  setup.config.clusters[0]!.password = { file: wrong };
  const result = await withWorker(setup.config, () =>
    runCli(['backup', 'full', '--cluster', 'test', '--wait', '--config', setup.configPath], {}),
  );
  // The CLI read the right password from its config, the worker the wrong one: the worker decides.
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/authentication failed .*check user and the password reference/);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  // At once: the failing activity ran one attempt, no retries.
  const workflowId = /started (\S+);/.exec(result.stdout)?.[1];
  expect(workflowId).toMatch(/^backup-full\/test\//);
  const { client, close } = await temporalClient();
  try {
    const history = await client.workflow.getHandle(workflowId as string).fetchHistory();
    const attempts = (history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt).filter((a): a is number => typeof a === 'number');
    expect(attempts.length).toBeGreaterThan(0);
    expect(Math.max(...attempts)).toBe(1);
  } finally {
    await close();
  }
  expect(harness().mariadb.user).toBe('dbops');
});

test.each(products())('on %s: schema backups need a reason and hold no rows; emergency backups are fulls under their own retention', async (product) => {
  if (product !== 'mariadb') {
    const conn = await rootConnection(product);
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await seedSampleDatabase(conn, { database: DB, customers: 20, orders: 100 });
    await conn.end();
  }
  const setup = makeTestConfig(`schema-${product}`, { databases: [DB], product });
  const refused = await runCli(['backup', 'schema', '--cluster', 'test', '--config', setup.configPath]);
  expect([refused.code, refused.stderr.trim()]).toEqual([1, 'dbops: --reason is required for a schema backup (e.g. the migration id)']);

  await withWorker(setup.config, async () => {
    const schema = await runCli(['backup', 'schema', '--cluster', 'test', '--reason', 'MIG-42', '--wait', '--json', '--config', setup.configPath]);
    expect(schema.code).toBe(0);
    const m = ManifestSchema.parse(JSON.parse(schema.stdout));
    expect(m).toMatchObject({ type: 'schema', retentionClass: 'schema', reason: 'MIG-42' });
    expect(m.artifacts[0]!.name).toBe('schema.sql.zst');
    expect(m.objects).toMatchObject({ routines: 2, triggers: 1, events: 1 });
    const dir = path.join(setup.config.repository.path!, 'test', 'schema', m.startedAt.slice(0, 10), m.id);
    const sql = execFileSync('zstd', ['-dc', path.join(dir, 'schema.sql.zst')], { encoding: 'utf8' });
    expect(sql).toContain('CREATE TABLE `orders`');
    expect(sql).toContain('CREATE DEFINER');
    expect(sql).not.toMatch(/^INSERT INTO/m); // (the trigger's body has one, inside CREATE TRIGGER)

    const emergency = await runCli(['backup', 'emergency', '--cluster', 'test', '--reason', 'INC-7', '--wait', '--json', '--config', setup.configPath]);
    const e = ManifestSchema.parse(JSON.parse(emergency.stdout));
    expect(e).toMatchObject({ type: 'emergency', retentionClass: 'emergency', reason: 'INC-7' });
    expect(e.tables.find((t) => t.table === 'orders')?.rows).toBe(100);

    const show = await runCli(['backup', 'show', e.id, '--config', setup.configPath]);
    expect(show.stdout).toContain(`${e.id}  emergency backup of test, verified`);
    expect(show.stdout).toMatch(/table\s+clitest\.orders\s+100 rows/);
  });
});

test('dbops status: last verified backup per type with its age, and the failures of the last day', async () => {
  const setup = makeTestConfig('status', { databases: [DB] });
  const { client, close } = await temporalClient();
  try {
    await withWorker(setup.config, async () => {
      const full = ManifestSchema.parse(JSON.parse((await runCli(['backup', 'full', '--cluster', 'test', '--wait', '--json', '--config', setup.configPath])).stdout));
      // A run that fails: a schema backup without a reason, started past the CLI's own check.
      const failing = await client.workflow.start('schemaBackupWorkflow', { taskQueue: setup.config.temporal.taskQueue, workflowId: `backup-schema/test/failing-${Date.now()}`, args: [{ cluster: 'test' }] });
      await expect(failing.result()).rejects.toThrow();
      let report: { backups: Array<{ type: string; id: string | null; ageSeconds: number | null }>; failures: Array<{ workflowId: string }> } = { backups: [], failures: [] };
      for (let i = 0; i < 50 && !report.failures.some((f) => f.workflowId === failing.workflowId); i++) {
        report = JSON.parse((await runCli(['status', '--json', '--config', setup.configPath])).stdout);
        await new Promise((r) => setTimeout(r, 200));
      }
      const last = report.backups.find((b) => b.type === 'full');
      expect(last).toMatchObject({ id: full.id });
      expect(last!.ageSeconds).toBeLessThan(120);
      expect(report.backups.find((b) => b.type === 'incremental')).toMatchObject({ id: null, ageSeconds: null });
      expect(report.failures.map((f) => f.workflowId)).toContain(failing.workflowId);
      const human = await runCli(['status', '--config', setup.configPath]);
      expect(human.stdout).toMatch(new RegExp(`test\\s+full\\s+\\d+s ago\\s+${full.id.replace(/\./g, '\\.')}`));
      expect(human.stdout).toMatch(new RegExp(`FAILED\\s+${failing.workflowId}: .*reason`));
    });
  } finally {
    await close();
  }
});

test('dbops setup temporal registers the search attributes on a namespace, once', async () => {
  const setup = makeTestConfig('setupns');
  const namespace = `dbops-setup-${Date.now()}`;
  const { client, close } = await temporalClient();
  try {
    await client.connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86400) } });
    const text = readFileSync(setup.configPath, 'utf8').replace('namespace: default', `namespace: ${namespace}`);
    writeFileSync(setup.configPath, text);
    let first = await runCli(['setup', 'temporal', '--config', setup.configPath]);
    for (let i = 0; i < 20 && first.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 500)); // the new namespace becomes visible shortly
      first = await runCli(['setup', 'temporal', '--config', setup.configPath]);
    }
    expect(first.stdout.trim()).toBe(`search attributes on ${namespace}: added DbopsCluster, DbopsOperation, DbopsBackupType, DbopsAwaitingApproval; already there none`);
    const second = await runCli(['setup', 'temporal', '--config', setup.configPath]);
    expect(second.stdout.trim()).toBe(`search attributes on ${namespace}: added none; already there DbopsCluster, DbopsOperation, DbopsBackupType, DbopsAwaitingApproval`);
  } finally {
    await close();
  }
});
