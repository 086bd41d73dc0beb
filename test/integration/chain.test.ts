/**
 * The backup chain against the real servers: full → writes → incremental → writes →
 * differential → writes → incremental. Every artifact validates; each binlog backup holds
 * exactly the writes since its parent; corruption and purged binlogs are caught; one backup
 * operation per cluster at a time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { RowDataPacket } from 'mysql2/promise';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { validateBackup, findBackup } from '../../src/client/catalog';
import { openRepository, readChainState } from '../../src/repository';
import { ManifestSchema, type BackupType, type Manifest } from '../../src/domain/manifest';
import { holdClusterLock, makeTestConfig, products, rootConnection, server, runCli, temporalClient, withWorker, type TestSetup } from '../harness/context';

describe.each(products())('on %s', (product) => {
  const DB = 'chaintest';
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  let tick = 0;

  async function backup(type: BackupType): Promise<Manifest> {
    // Distinct start times keep workflow ids unique within a second.
    tick += 1;
    return waitForManifest(await startBackup(client, setup.config, type, { cluster: 'test', requestedBy: 'jest', reason: 'chain test' }, new Date(Date.now() + tick * 1000)));
  }

  async function mark(label: string, count: number): Promise<void> {
    const conn = await rootConnection(product);
    for (let i = 1; i <= count; i++) await conn.query(`INSERT INTO ${DB}.marks (label) VALUES (?)`, [`${label}-${i}`]);
    await conn.query(`UPDATE ${DB}.marks SET touched = touched + 1 WHERE label = ?`, [`${label}-1`]);
    await conn.end();
  }

  /** Decompresses a binlog backup and decodes it (from its start position) like a replay would. */
  function insertedLabels(m: Manifest): string[] {
    const stored = path.join(setup.config.repository.path!, 'test', m.type, m.startedAt.slice(0, 10), m.id);
    const work = mkdtempSync(path.join(setup.dir, 'decode-'));
    const files = m.binlogs!.files.map((f) => {
      const out = path.join(work, f);
      const r = spawnSync('zstd', ['-q', '-d', '-f', path.join(stored, `${f}.zst`), '-o', out]);
      if (r.status !== 0) throw new Error(`zstd: ${r.stderr}`);
      return out;
    });
    const decoded = spawnSync(server(product).tools?.binlog ?? 'mariadb-binlog', ['--no-defaults', '--base64-output=DECODE-ROWS', '-v', `--start-position=${m.binlogs!.startPosition}`, ...files], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC' },
      maxBuffer: 256 * 1024 * 1024,
    });
    if (decoded.status !== 0) throw new Error(`binlog decoder: ${decoded.stderr}`);
    // Row events print as "### INSERT INTO `chaintest`.`marks`" then "###   @2='p1-3'".
    const labels: string[] = [];
    const re = /### INSERT INTO `chaintest`\.`marks`\n### SET\n###\s+@1=\d+\n###\s+@2='([^']+)'/g;
    for (const match of decoded.stdout.matchAll(re)) labels.push(match[1]!);
    return labels.sort();
  }

  const labels = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`).sort();

  beforeAll(async () => {
    const conn = await rootConnection(product);
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await conn.query(`CREATE DATABASE ${DB}`);
    await conn.query(`CREATE TABLE ${DB}.marks (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(40) NOT NULL, touched INT NOT NULL DEFAULT 0)`);
    await conn.query(`INSERT INTO ${DB}.marks (label) VALUES ('before-full')`);
    await conn.end();
    setup = makeTestConfig(`chain-${product}`, { databases: [DB], product });
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await closeClient();
  });

  test('full → incremental → differential → incremental: each holds exactly the writes since its parent, and validates', async () => {
    await withWorker(setup.config, async () => {
      const full = await backup('full');
      await mark('p1', 5);
      const incr1 = await backup('incremental');
      await mark('p2', 3);
      const diff = await backup('differential');
      await mark('p3', 4);
      const incr2 = await backup('incremental');

      expect(incr1).toMatchObject({ type: 'incremental', parentId: full.id, baseFullId: full.id });
      expect(incr1.binlogs).toMatchObject({ startFile: full.snapshot!.file, startPosition: full.snapshot!.position });
      expect(diff).toMatchObject({ type: 'differential', parentId: full.id, baseFullId: full.id });
      expect(diff.binlogs).toMatchObject({ startFile: full.snapshot!.file, startPosition: full.snapshot!.position });
      expect(incr2).toMatchObject({ type: 'incremental', parentId: diff.id, baseFullId: full.id });
      expect(incr2.binlogs!.startPosition).toBe(4);

      // Exactly the writes since the parent: nothing before it, nothing missing.
      expect(insertedLabels(incr1)).toEqual(labels('p1', 5));
      expect(insertedLabels(diff)).toEqual([...labels('p1', 5), ...labels('p2', 3)].sort());
      expect(insertedLabels(incr2)).toEqual(labels('p3', 4));

      // What the manifest says of the range: transactions, times, GTIDs of this server.
      expect(incr1.binlogs!.transactions).toBe(6); // 5 inserts + 1 update (autocommit)
      expect(incr2.binlogs!.transactions).toBe(5);
      expect(incr1.binlogs!.gtids[0]!.source).toMatch(product === 'mariadb' ? /^0-11$/ : /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(Date.parse(incr1.binlogs!.firstEventTime!)).toBeGreaterThanOrEqual(Date.parse(full.startedAt) - 1000);
      expect(incr1.artifacts.every((a) => a.name.endsWith('.zst'))).toBe(true);

      for (const m of [full, incr1, diff, incr2]) {
        const report = await validateBackup(setup.config, await findBackup(setup.config, m.id));
        expect(report).toMatchObject({ id: m.id, ok: true, problems: [] });
      }
      const list = await runCli(['backup', 'list', '--cluster', 'test', '--json', '--config', setup.configPath]);
      expect((JSON.parse(list.stdout) as Manifest[]).map((m) => m.id)).toEqual([full.id, incr1.id, diff.id, incr2.id]);
      const info = await runCli(['storage', 'info', '--json', '--config', setup.configPath]);
      const types = JSON.parse(info.stdout).clusters[0].types as Array<{ type: string; count: number }>;
      expect(types.filter((t) => t.count > 0).map((t) => [t.type, t.count])).toEqual([['full', 1], ['incremental', 2], ['differential', 1]]);

      // A flipped byte: validate fails, says why, exits non-zero.
      const artifact = path.join(setup.config.repository.path!, 'test', 'incremental', incr1.startedAt.slice(0, 10), incr1.id, incr1.artifacts[0]!.name);
      const bytes = readFileSync(artifact);
      bytes[bytes.length >> 1]! ^= 0xff;
      writeFileSync(artifact, bytes);
      const bad = await runCli(['backup', 'validate', incr1.id, '--config', setup.configPath]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(new RegExp(`backup ${incr1.id} is NOT valid: .*sha256`));
      const good = await runCli(['backup', 'validate', diff.id, '--config', setup.configPath]);
      expect([good.code, good.stdout]).toEqual([0, expect.stringMatching(/^ok: .*decompressed end to end/)]);
    });
  });

  test('a new full first closes the previous chain: every second up to its snapshot stays restorable', async () => {
    const own = makeTestConfig(`chain-close-${product}`, { databases: [DB], product });
    const take = async (type: BackupType) => {
      tick += 1;
      return waitForManifest(await startBackup(client, own.config, type, { cluster: 'test', requestedBy: 'jest' }, new Date(Date.now() + tick * 1000)));
    };
    await withWorker(own.config, async () => {
      const full1 = await take('full');
      await mark('c1', 2);
      const incr = await take('incremental');
      await mark('c2', 3); // after the last incremental, before the next full: the old gap
      await new Promise((r) => setTimeout(r, 1100));
      const inGap = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      await new Promise((r) => setTimeout(r, 1100));
      const full2 = await take('full');

      const all = (await openRepository(own.config).catalog.list('test')).map((b) => b.manifest);
      const closing = all.find((m) => m.type === 'incremental' && m.parentId === incr.id);
      expect(closing).toMatchObject({ baseFullId: full1.id, reason: `closes the chain before full ${full2.id}` });
      expect(closing!.binlogs!.endFile >= full2.snapshot!.file).toBe(true); // it reaches past the new snapshot
      expect(closing!.binlogs!.transactions).toBeGreaterThanOrEqual(4); // c2's 3 inserts and its update

      const plan = await runCli(['restore', 'plan', '--cluster', 'test', '--database', DB, '--to', inGap, '--json', '--config', own.configPath]);
      expect(plan.stderr).toBe('');
      expect(plan.code).toBe(0);
      expect(plan.stdout).toContain(full1.id);
      expect(plan.stdout).toContain(closing!.id);

      const next = await take('incremental');
      expect(next).toMatchObject({ parentId: full2.id, baseFullId: full2.id });
    });
  });

  test('binlogs purged before they were copied: the gap fails the backup, is recorded, and the next run takes a full', async () => {
    await withWorker(setup.config, async () => {
      await mark('p4', 2);
      const conn = await rootConnection(product);
      await conn.query('FLUSH BINARY LOGS');
      const [logs] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
      const active = String(logs[logs.length - 1]!.Log_name);
      // MariaDB keeps a binlog until InnoDB's binlog checkpoint passes it: purge until it is gone.
      for (let i = 0; ; i++) {
        await conn.query(`PURGE BINARY LOGS TO '${active}'`);
        const [left] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
        if (left.length === 1) break;
        if (i > 100) throw new Error(`could not purge the binlogs: ${JSON.stringify(left)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await conn.end();

      const gap = await runCli(['backup', 'incremental', '--cluster', 'test', '--wait', '--config', setup.configPath]);
      expect(gap.code).toBe(1);
      expect(gap.stderr).toMatch(/gap in the backup chain: binary logs were purged before they were copied: binlog\.\d+ is needed after \S+-incremental, the server's oldest is binlog\.\d+; the next backup will be a full/);
      const chain = await readChainState(openRepository(setup.config).storage, 'test');
      expect(chain?.reason).toMatch(/purged/);
      expect((await openRepository(setup.config).catalog.list('test', 'incremental')).length).toBe(2); // nothing published

      const promoted = await runCli(['backup', 'incremental', '--cluster', 'test', '--wait', '--json', '--config', setup.configPath]);
      expect(promoted.stderr).toBe('');
      const next = ManifestSchema.parse(JSON.parse(promoted.stdout));
      expect(next.type).toBe('full');
      expect(next.reason).toMatch(/^instead of incremental: the chain is broken since/);
      await mark('p5', 2);
      const after = await backup('incremental');
      expect(after).toMatchObject({ type: 'incremental', parentId: next.id, baseFullId: next.id });
      expect(insertedLabels(after)).toEqual(labels('p5', 2));
    });
  });

  test('one backup operation per cluster: a second is refused naming the run that holds the cluster; a dead holder is taken over', async () => {
    const holder = await holdClusterLock(client, setup.config, 'test', 'full backup', '2026-01-01T00:00:00Z');
    await withWorker(setup.config, async () => {
      const refused = await runCli(['backup', 'full', '--cluster', 'test', '--wait', '--config', setup.configPath]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toBe(
        `dbops: cluster test is busy: full backup ${holder.workflowId} has held it since 2026-01-01T00:00:00Z; one backup operation per cluster at a time`,
      );
      await holder.terminate('test: the holder died');
      const taken = await backup('full');
      expect(taken.type).toBe('full');
    });
    expect(await openRepository(setup.config).locks.holder('test')).toBeNull(); // released
  });
});
