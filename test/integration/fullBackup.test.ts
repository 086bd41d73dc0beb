/**
 * Full backup against the real servers: what a DBA would check before trusting it.
 * The artifact, decompressed and loaded into a separate fresh server, must give the same
 * CHECKSUM TABLE results and keep routines, triggers, events, views and awkward data.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import type { RowDataPacket, Connection as MysqlConnection } from 'mysql2/promise';
import { startFullBackup, waitForManifest } from '../../src/client/backups';
import { IndexSchema, type Manifest } from '../../src/domain/manifest';
import type { LocalServer } from '../../src/mysql/servers/local';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { harness, loadDump, makeTestConfig, products, rootConnection, rootConnectionTo, scratchServer, tableChecksums, temporalClient, withWorker, type LoadTarget } from '../harness/context';

const DB = 'fulltest';

async function schemaObjects(conn: MysqlConnection, db: string) {
  const q = async (sql: string) => (await conn.query<RowDataPacket[]>(sql, [db]))[0];
  return {
    routines: await q('SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY 1'),
    triggers: await q('SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1'),
    events: await q('SELECT EVENT_NAME, EVENT_DEFINITION, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1'),
    views: await q('SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 1'),
  };
}

async function awkwardValues(conn: MysqlConnection, db: string) {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT id, name, email, city, profile, HEX(avatar) AS avatar FROM \`${db}\`.customers ORDER BY id`,
  );
  const [edge] = await conn.query<RowDataPacket[]>(`SELECT id, s, HEX(b) AS b, j FROM \`${db}\`.edge ORDER BY id`);
  return { rows, edge };
}

describe.each(products())('full backup workflow on %s', (product) => {
  let scratch: (LoadTarget & LocalServer) | undefined;

  beforeAll(async () => {
    const conn = await rootConnection(product);
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await seedSampleDatabase(conn, { database: DB, customers: 300, orders: 20_000 });
    await conn.query(`CREATE TABLE ${DB}.edge (id INT PRIMARY KEY, s TEXT NULL, b VARBINARY(64) NULL, j JSON NULL)`);
    await conn.query(`INSERT INTO ${DB}.edge VALUES ?`, [
      [
        [1, "'); DROP TABLE x; --", Buffer.from('28293b27', 'hex'), '{"a": "(;)"}'],
        [2, 'line\nbreak\ttab \\ backslash', null, null],
        [3, '😀 emoji, 中文, ümlaut', Buffer.alloc(0), '[]'],
        [4, null, Buffer.from([0, 0x5c, 0x27, 0x0a]), '{"nested": {"q": "it\'s"}}'],
        [5, '', null, 'null'],
      ],
    ]);
    await conn.query(`UPDATE ${DB}.orders SET status = 'paid' WHERE id <= 10`); // fires the trigger
    await conn.end();
  });

  afterAll(async () => {
    await scratch?.stop();
  });

  test('a verified backup restores into a fresh server with identical checksums, objects and data', async () => {
    const setup = makeTestConfig(`full-${product}`, { databases: [DB], product });
    const { client, close } = await temporalClient();
    let manifest: Manifest;
    try {
      manifest = await withWorker(setup.config, async () => {
        const handle = await startFullBackup(client, setup.config, { cluster: 'test', requestedBy: 'jest' });
        expect(handle.workflowId).toMatch(/^backup-full\/test\/\d{8}T\d{6}\.\d{3}Z$/);
        const result = await waitForManifest(handle);
        // Determinism guard: today's workflow code replays the recorded history.
        await Worker.runReplayHistory({ workflowBundle: { codePath: harness().workflowBundlePath } }, await handle.fetchHistory(), handle.workflowId);
        return result;
      });
    } finally {
      await close();
    }

    // The catalog: manifest, artifact checksum, index, nothing left in staging.
    const repo = setup.config.repository.path!;
    const dir = path.join(repo, 'test', 'full', manifest.startedAt.slice(0, 10), manifest.id);
    const artifact = manifest.artifacts[0]!;
    const file = path.join(dir, artifact.name);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(artifact.sha256);
    expect(readFileSync(file).length).toBe(artifact.size);
    expect(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))).toEqual(manifest);
    const index = IndexSchema.parse(JSON.parse(readFileSync(path.join(repo, 'test', 'full', 'index.json'), 'utf8')));
    expect(index.backups.map((b) => b.id)).toEqual([manifest.id]);
    expect(readdirSync(path.join(repo, 'test', '.staging'))).toEqual([]);

    // What the manifest says matches the source.
    const source = await rootConnection(product);
    const [counts] = await source.query<RowDataPacket[]>(
      `SELECT 'audit_log' t, COUNT(*) n FROM ${DB}.audit_log UNION ALL SELECT 'customers', COUNT(*) FROM ${DB}.customers
       UNION ALL SELECT 'edge', COUNT(*) FROM ${DB}.edge UNION ALL SELECT 'orders', COUNT(*) FROM ${DB}.orders`,
    );
    const byTable = Object.fromEntries(manifest.tables.map((t) => [t.table, t.rows]));
    for (const row of counts) expect(byTable[String(row.t)]).toBe(Number(row.n));
    expect(byTable.audit_log).toBe(10);
    expect(manifest.snapshot?.file).toMatch(/^binlog\.\d{6}$/);
    expect(manifest.snapshot?.position).toBeGreaterThan(0);
    expect(manifest.snapshot?.gtidSet).toMatch(product === 'mariadb' ? /^\d+-11-\d+/ : /^[0-9a-f-]{36}:1-\d+$/);
    expect(manifest.server).toMatchObject(product === 'mariadb' ? { product, serverId: 11 } : { product, serverId: 21 });
    expect(manifest.objects).toEqual({ views: [`${DB}.customer_totals`], routines: 2, triggers: 1, events: 1 });
    expect(manifest.status).toBe('verified');

    // Restore into a separate fresh server, the way an operator would, and compare.
    scratch = await scratchServer(product, path.join(harness().baseDir, `restore-target-${product}`), 99);
    loadDump(file, scratch);
    const restored = await rootConnectionTo(scratch);
    expect(await tableChecksums(restored, DB)).toEqual(await tableChecksums(source, DB));
    expect(await schemaObjects(restored, DB)).toEqual(await schemaObjects(source, DB));
    expect(await awkwardValues(restored, DB)).toEqual(await awkwardValues(source, DB));
    const [[callable]] = (await restored.query(`SELECT ${DB}.order_tax(100.00) AS tax`)) as unknown as [[{ tax: string }]];
    expect(callable.tax).toBe('8.00');
    await restored.end();
    await source.end();
  });

  test('gzip repositories verify and restore the same way', async () => {
    const setup = makeTestConfig(`gzip-${product}`, { databases: [DB], compression: 'gzip', product });
    const { client, close } = await temporalClient();
    try {
      const manifest = await withWorker(setup.config, async () =>
        waitForManifest(await startFullBackup(client, setup.config, { cluster: 'test' }, new Date(Date.now() + 1000))),
      );
      expect(manifest.artifacts[0]).toMatchObject({ name: 'dump.sql.gz', compression: 'gzip' });
      expect(manifest.artifacts[0]!.size).toBeLessThan(manifest.artifacts[0]!.rawSize * 0.3);
      const dir = path.join(setup.config.repository.path!, 'test', 'full', manifest.startedAt.slice(0, 10), manifest.id);
      const target = await scratchServer(product, path.join(setup.dir, 'target'), 98);
      try {
        loadDump(path.join(dir, 'dump.sql.gz'), target);
        const restored = await rootConnectionTo(target);
        const source = await rootConnection(product);
        expect(await tableChecksums(restored, DB)).toEqual(await tableChecksums(source, DB));
        await restored.end();
        await source.end();
      } finally {
        await target.stop();
        rmSync(path.join(setup.dir, 'target'), { recursive: true, force: true });
      }
      expect(existsSync(path.join(dir, 'manifest.json'))).toBe(true);
    } finally {
      await close();
    }
  });
});
