/**
 * The dbops command as an operator uses it: JSON on stdout, one line on stderr and a
 * non-zero exit on failure, bad input refused before anything starts.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { seedSampleDatabase } from '../../src/sandbox/sampleData';
import { ManifestSchema } from '../../src/domain/manifest';
import { harness, makeTestConfig, rootConnection, runCli, withWorker } from '../harness/context';

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

test('a wrong password fails the backup at once, not after retries, saying what to fix', async () => {
  const setup = makeTestConfig('authfail', { databases: [DB] });
  const wrong = path.join(setup.dir, 'wrong.password');
  writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
  setup.config.clusters[0]!.password = { file: wrong };
  const started = Date.now();
  const result = await withWorker(setup.config, () =>
    runCli(['backup', 'full', '--cluster', 'test', '--wait', '--config', setup.configPath], {}),
  );
  // The CLI read the right password from its config, the worker the wrong one: the worker decides.
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/authentication failed .*check user and the password reference/);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(harness().mariadb.user).toBe('dbops');
});
