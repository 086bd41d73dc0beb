/**
 * A restore writes only into its own target. The replayed window holds statements written
 * for the live database with qualified names (CREATE, DROP, TRUNCATE, ALTER, RENAME of
 * `canteen.x`, and under MIXED format qualified DML): the live schema must stay identical,
 * table for table, object for object, checksum for checksum, and the copy must be right.
 * What cannot be confined refuses the restore before anything is written. The restore's
 * account can write nothing but its target, and is gone afterwards.
 */
import type { Client } from '@temporalio/client';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { startBackup, waitForManifest, explainFailure } from '../../src/client/backups';
import { startPitr } from '../../src/client/restores';
import { parseTarget } from '../../src/domain/restoreTarget';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { createScopedAccount, dropScopedAccount } from '../../src/mysql/restoreAccount';
import { makeTestConfig, products, rootConnection, server, tableChecksums, temporalClient, withWorker, type TestSetup } from '../harness/context';

describe.each(products())('on %s', (product) => {
  const DB = 'canteen';
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  let conn: Connection;

  async function rows(query: string, params: unknown[] = []): Promise<RowDataPacket[]> {
    return (await conn.query<RowDataPacket[]>(query, params))[0];
  }

  /** Everything a DBA would compare: tables with their DDL, every object with its definition and definer, checksums. */
  async function schemaOf(db: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const t of await rows('SELECT TABLE_NAME AS n, TABLE_TYPE AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [db])) {
      const [show] = await rows(`SHOW CREATE ${t.t === 'VIEW' ? 'VIEW' : 'TABLE'} \`${db}\`.\`${String(t.n)}\``);
      out[`${t.t} ${String(t.n)}`] = String(show?.['Create Table'] ?? show?.['Create View']);
    }
    for (const r of await rows('SELECT TRIGGER_NAME AS n, DEFINER AS d, ACTION_STATEMENT AS s FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1', [db])) out[`TRIGGER ${String(r.n)}`] = `${String(r.d)} ${String(r.s)}`;
    for (const r of await rows('SELECT ROUTINE_NAME AS n, DEFINER AS d, ROUTINE_DEFINITION AS s FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY 1', [db])) out[`ROUTINE ${String(r.n)}`] = `${String(r.d)} ${String(r.s)}`;
    for (const r of await rows('SELECT EVENT_NAME AS n, DEFINER AS d, STATUS AS st, EVENT_DEFINITION AS s FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1', [db])) out[`EVENT ${String(r.n)}`] = `${String(r.d)} ${String(r.st)} ${String(r.s)}`;
    for (const [table, sum] of Object.entries(await tableChecksums(conn, db))) out[`CHECKSUM ${table}`] = sum;
    return out;
  }

  async function restore(into: string) {
    return withWorker(setup.config, async () => {
      const handle = await startPitr(client, setup.config, { cluster: 'test', database: DB, target: parseTarget('latest'), into, requestedBy: 'jest' });
      return handle.result() as Promise<{ window: { rewritten: unknown[]; skipped: unknown[] }; definersRestored: number }>;
    });
  }

  beforeAll(async () => {
    conn = await rootConnection(product);
    for (const d of [DB, `${DB}_iso`, `${DB}_mixed`, `${DB}_refused`, 'canteen_other']) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await seedSampleDatabase(conn, { database: DB, customers: 20, orders: 200 });
    await conn.query(`CREATE TABLE ${DB}.trunc_me (id INT PRIMARY KEY) ENGINE=InnoDB`);
    await conn.query(`INSERT INTO ${DB}.trunc_me VALUES (1), (2), (3)`);
    await conn.query(`CREATE TABLE ${DB}.r1 (id INT PRIMARY KEY) ENGINE=InnoDB`);
    await conn.query(`CREATE TABLE ${DB}.drop_me (id INT PRIMARY KEY) ENGINE=InnoDB`);
    await conn.query(`CREATE EVENT ${DB}.tick ON SCHEDULE EVERY 1 HOUR ENABLE DO UPDATE ${DB}.orders SET note = 'tick' WHERE id = 1`);
    await conn.query('CREATE DATABASE canteen_other');
    await conn.query('CREATE TABLE canteen_other.x (id INT PRIMARY KEY) ENGINE=InnoDB');
    setup = makeTestConfig(`isolation-${product}`, { databases: [DB], product });
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    for (const d of [DB, `${DB}_iso`, `${DB}_mixed`, `${DB}_refused`, 'canteen_other']) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await conn.end();
    await closeClient();
  });

  test('qualified DDL in the window (CREATE, DROP, TRUNCATE, ALTER, RENAME of canteen.x): live schema identical, the copy right', async () => {
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
    });
    // The window, written as the application would, with `USE canteen` and qualified names.
    const app = await rootConnection(product);
    await app.query(`USE ${DB}`);
    await app.query(`CREATE TABLE ${DB}.probe (id INT PRIMARY KEY) ENGINE=InnoDB`);
    await app.query(`INSERT INTO ${DB}.probe VALUES (1)`);
    await app.query(`ALTER TABLE ${DB}.orders ADD COLUMN extra INT NULL`);
    await app.query(`UPDATE ${DB}.orders SET extra = id * 2 WHERE id <= 10`);
    await app.query(`TRUNCATE ${DB}.trunc_me`);
    await app.query(`RENAME TABLE ${DB}.r1 TO ${DB}.r2`);
    await app.query(`DROP TABLE ${DB}.drop_me`);
    await app.end();
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
    });
    // Later, on the live database, the probe is dropped: a restore must not bring it back there.
    await conn.query(`DROP TABLE ${DB}.probe`);
    const liveBefore = await schemaOf(DB);

    const result = await restore(`${DB}_iso`);

    expect(await schemaOf(DB)).toEqual(liveBefore);
    expect(await rows('SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [DB, 'probe'])).toEqual([]);
    const copy = (await rows('SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [`${DB}_iso`])).map((r) => String(r.n));
    expect(copy).toEqual(expect.arrayContaining(['probe', 'r2', 'trunc_me', 'orders']));
    expect(copy).not.toContain('r1');
    expect(copy).not.toContain('drop_me');
    expect(await rows(`SELECT id FROM ${DB}_iso.probe`)).toEqual([{ id: 1 }]);
    expect(await rows(`SELECT COUNT(*) AS n FROM ${DB}_iso.trunc_me`)).toEqual([{ n: '0' }]);
    expect(await rows(`SELECT SUM(extra) AS s FROM ${DB}_iso.orders`)).toEqual([{ s: '110' }]);
    // CREATE, INSERT … probe, ALTER, TRUNCATE, RENAME (the server logs DROP TABLE unqualified).
    expect(result.window.rewritten.length).toBeGreaterThanOrEqual(4);

    // Objects: original definers back, the event disabled, nothing defined by a vanished account.
    const live = await schemaOf(DB);
    const restored = await schemaOf(`${DB}_iso`);
    for (const key of Object.keys(live).filter((k) => /^(TRIGGER|ROUTINE) /.test(k))) {
      expect(restored[key]?.split(' ')[0]).toBe(live[key]?.split(' ')[0]);
    }
    expect(restored['EVENT tick']).toMatch(/ DISABLED /);
    expect(live['EVENT tick']).toMatch(/ ENABLED /);
    expect(await rows("SELECT User FROM mysql.user WHERE User LIKE 'dbops\\_r\\_%'")).toEqual([]);
    // The restored trigger writes into the copy's audit_log, not the live one.
    const liveAudit = await rows(`SELECT COUNT(*) AS n FROM ${DB}.audit_log`);
    await conn.query(`UPDATE ${DB}_iso.orders SET status = 'paid' WHERE id = 2`);
    expect(await rows(`SELECT COUNT(*) AS n FROM ${DB}.audit_log`)).toEqual(liveAudit);
    expect(Number((await rows(`SELECT COUNT(*) AS n FROM ${DB}_iso.audit_log WHERE order_id = 2`))[0]?.n)).toBeGreaterThan(0);
  }, 180_000);

  test('MIXED format: qualified DML is rewritten into the copy; a statement on another database refuses the restore before it writes', async () => {
    const app = await rootConnection(product);
    await app.query("SET SESSION binlog_format = 'MIXED'");
    await app.query(`USE ${DB}`);
    await app.query(`INSERT INTO ${DB}.trunc_me VALUES (7), (8)`);
    await app.query(`UPDATE ${DB}.orders SET note = 'mixed' WHERE id <= 3`);
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 2000)));
    });
    const liveBefore = await schemaOf(DB);
    await restore(`${DB}_mixed`);
    expect(await schemaOf(DB)).toEqual(liveBefore);
    expect((await rows(`SELECT id FROM ${DB}_mixed.trunc_me ORDER BY id`)).map((r) => r.id)).toEqual([7, 8]);
    // The copy equals the live database, but for the probe that was dropped on the live one after the window.
    const { probe, ...copied } = await tableChecksums(conn, `${DB}_mixed`);
    expect(probe).toBeDefined();
    expect(copied).toEqual(await tableChecksums(conn, DB));

    // Now the window writes another database from `USE canteen`: the restore refuses, naming it.
    await app.query('INSERT INTO canteen_other.x VALUES (1)');
    await app.end();
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 3000)));
    });
    const otherBefore = await tableChecksums(conn, 'canteen_other');
    const refused = await restore(`${DB}_refused`).then(() => null, (error: unknown) => explainFailure(error));
    expect(refused).toMatch(/restore refused before writing anything: .*binlog\.\d+:\d+ `INSERT INTO canteen_other\.x VALUES \(1\)`: it names database `canteen_other`/);
    expect(await rows('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [`${DB}_refused`])).toEqual([]);
    expect(await tableChecksums(conn, 'canteen_other')).toEqual(otherBefore);
    expect(await schemaOf(DB)).toEqual(liveBefore);
  }, 180_000);

  test('the restore account the server sees can write its target and nothing else', async () => {
    const admin = await rootConnection(product);
    await admin.query('CREATE DATABASE IF NOT EXISTS canteen_scoped');
    const account = await createScopedAccount(admin, product, 'canteen_scoped', 'jest-scoped');
    try {
      const db = server(product);
      const scoped = await createConnection({ ...(product === 'mysql' ? { host: db.host, port: db.port } : { socketPath: db.socket }), user: account.user, password: account.password });
      try {
        await scoped.query('CREATE TABLE canteen_scoped.ok (id INT)');
        await expect(scoped.query(`CREATE TABLE ${DB}.evil (id INT)`)).rejects.toThrow(/denied/);
        await expect(scoped.query(`DROP TABLE ${DB}.orders`)).rejects.toThrow(/denied/);
        await expect(scoped.query(`INSERT INTO ${DB}.orders (customer_id, total, created_at) VALUES (1, 1, NOW())`)).rejects.toThrow(/denied/);
        // `_` in the target's name is not a wildcard: canteenXscoped would match an unescaped grant.
        await expect(scoped.query('CREATE DATABASE canteenXscoped')).rejects.toThrow(/denied/);
      } finally {
        await scoped.end();
      }
    } finally {
      await dropScopedAccount(admin, account);
      await admin.query('DROP DATABASE IF EXISTS canteen_scoped');
      await admin.end();
    }
  });
});
