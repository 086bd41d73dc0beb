/**
 * The parallel (chunked) full backup and its parallel load, on both products: every value
 * of awkward types comes back byte for byte (CHECKSUM TABLE equal), triggers do not fire
 * during the load and exist after it, point-in-time replay continues after the chunked
 * full, and a load interrupted after some chunks resumes from its checkpoint to the same
 * tables as a clean load.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { Client } from '@temporalio/client';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { startPitr } from '../../src/client/restores';
import type { Manifest, Product } from '../../src/domain/manifest';
import { planRestore } from '../../src/domain/restorePlan';
import { parseTarget } from '../../src/domain/restoreTarget';
import { restoreDatabase } from '../../src/mysql/restore';
import type { LoadCheckpoint } from '../../src/mysql/parallelLoad';
import { openRepository } from '../../src/repository';
import { chmodSync, mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { harness, makeTestConfig, products, rootConnection, runCli, s3Objects, spawnCliWorker, tableChecksums, temporalClient, withWorker } from '../harness/context';

const DB = 'partest';
const DIGITS = '(SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';

async function seed(conn: Connection, product: Product): Promise<void> {
  for (const d of [DB, `${DB}_copy`, `${DB}_resumed`, `${DB}_clean`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
  await conn.query(`CREATE DATABASE ${DB} CHARACTER SET utf8mb4`);
  const json = product === 'mysql' ? 'JSON' : 'LONGTEXT';
  await conn.query(`CREATE TABLE ${DB}.big (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
      city VARCHAR(50) CHARACTER SET latin1,
      jp VARCHAR(20) CHARACTER SET sjis,
      raw VARBINARY(64),
      body BLOB,
      d DOUBLE, f FLOAT, amount DECIMAL(30,10),
      day DATE, at DATETIME(6), ts TIMESTAMP(6) NULL, t TIME(3), y YEAR,
      flags BIT(10), state ENUM('new','paid','gone'), tags SET('a','b','c'),
      doc ${json}, place POINT,
      name_len INT AS (CHAR_LENGTH(name)) VIRTUAL,
      total DECIMAL(31,10) AS (amount * 2) STORED,
      UNIQUE KEY u_name (name), KEY k_city (city, day), KEY k_amount (amount)
    ) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE ${DB}.audit (id INT AUTO_INCREMENT PRIMARY KEY, big_id BIGINT, note VARCHAR(20)) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE ${DB}.nokey (a INT, b VARCHAR(20)) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE ${DB}.strkey (k VARCHAR(20) PRIMARY KEY, v INT) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE ${DB}.empty (id INT PRIMARY KEY) ENGINE=InnoDB`);
  // id 0 is a value, not "the next one" (the load must keep it so too).
  await conn.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')");
  // Awkward values first: quotes, backslashes, NUL, ^Z, CR/LF, 4-byte UTF-8, every byte value, zero dates are off in strict mode.
  // Shift-JIS 'ソ' and '表' end in byte 0x5C, a backslash when read byte by byte.
  await conn.query(`INSERT INTO ${DB}.big (id, name, city, jp, raw, body, d, f, amount, day, at, ts, t, y, flags, state, tags, doc, place) VALUES
      (0, 'zero id', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (1, CONCAT('it''s \\\\ a "q"', CHAR(0), CHAR(26), '\\r\\n', '😀 ünï'), 'Zürich', CONVERT(_utf8mb4'ソ表\\ソ' USING sjis), UNHEX('00FF0A0D5C27221A'), REPEAT(UNHEX('00015C27'), 100),
       0.1e0 + 0.2e0, 3.14159, -12345678901234567890.0123456789, '2024-02-29', '2024-03-01 12:34:56.123456', '2024-03-01 12:34:56.654321', '-838:59:59.000', 2024,
       b'1010101010', 'paid', 'a,c', '{"k": "v\\\\"", "n": [1, 2.5, null]}', ST_GeomFromText('POINT(1.5 -2.25)')),
      (2, '', '', '', UNHEX(''), '', -0.0e0, 1e-30, 0, '1000-01-01', '9999-12-31 23:59:59.999999', '2000-01-01 00:00:01.000000', '00:00:00', 1901, b'0', 'new', '', '[]', ST_GeomFromText('POINT(0 0)'))`);
  // Bulk: 6000 rows over a key space with a gap, so some key ranges hold fewer rows.
  await conn.query(`INSERT INTO ${DB}.big (id, name, city, raw, body, d, f, amount, day, at, ts, t, y, flags, state, tags, doc, place)
      SELECT IF(n <= 3000, n + 100, n + 2100), CONCAT('name-', n), ELT(1 + n % 3, 'Zürich', 'Genève', NULL), UNHEX(SHA2(n, 256)), REPEAT(CHAR(n % 256), n % 50),
             n / 7, n / 3, n * 1.5, DATE_ADD('2020-01-01', INTERVAL n DAY), DATE_ADD('2020-01-01 00:00:00.5', INTERVAL n MINUTE), NULL, SEC_TO_TIME(n),
             1901 + n % 200, n % 1024, ELT(1 + n % 3, 'new', 'paid', 'gone'), ELT(1 + n % 4, 'a', 'b', 'a,b', ''), CONCAT('{"n": ', n, '}'), POINT(n, -n)
        FROM (SELECT a.n * 1000 + b.n * 100 + c.n * 10 + d.n + 1 AS n FROM ${DIGITS} a, ${DIGITS} b, ${DIGITS} c, ${DIGITS} d) seq WHERE n <= 6000`);
  await conn.query(`INSERT INTO ${DB}.nokey VALUES (1, 'x'), (1, 'x'), (NULL, NULL)`);
  await conn.query(`INSERT INTO ${DB}.strkey VALUES ('a', 1), ('b''c', 2)`);
  await conn.query(`CREATE TRIGGER ${DB}.big_ai AFTER INSERT ON ${DB}.big FOR EACH ROW INSERT INTO ${DB}.audit (big_id, note) VALUES (NEW.id, 'inserted')`);
  await conn.query(`CREATE VIEW ${DB}.cities AS SELECT city, COUNT(*) AS n FROM ${DB}.big GROUP BY city`);
  await conn.query(`INSERT INTO ${DB}.big (name, city) VALUES ('after trigger', 'Bern')`); // one audit row before the backup
  await conn.query(`ANALYZE TABLE ${DB}.big`);
}

/** A test config whose cluster takes parallel fulls with these settings. */
function parallelConfig(name: string, product: Product, database: string, fullBackup: Record<string, unknown>, restoreLoad?: Record<string, unknown>, extra: { s3?: true; encrypted?: true } = {}) {
  return makeTestConfig(name, {
    product,
    databases: [database],
    ...extra,
    mutate: (raw) => {
      const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
      c.fullBackup = { engine: 'parallel', ...fullBackup };
      if (restoreLoad) c.restoreLoad = restoreLoad;
    },
  });
}

async function count(conn: Connection, sql: string): Promise<number> {
  const [rows] = await conn.query<RowDataPacket[]>(sql);
  return Number(rows[0]?.n);
}

describe.each(products())('on %s', (product) => {
  let conn: Connection;
  let client: Client;
  let closeClient: () => Promise<void>;
  const setup = parallelConfig(`parallel-${product}`, product, DB, { threads: 2, chunkRows: 1000 }, { threads: 2 });
  let full: Manifest;

  beforeAll(async () => {
    process.env.DBOPS_DRILL_DIR = mkdtempSync(path.join(harness().baseDir, 'drills-'));
    // The drill server runs as an unprivileged OS user: the folders above its own must let it through.
    chmodSync(harness().baseDir, 0o711);
    chmodSync(process.env.DBOPS_DRILL_DIR, 0o711);
    conn = await rootConnection(product);
    await seed(conn, product);
    ({ client, close: closeClient } = await temporalClient());
  });
  afterAll(async () => {
    for (const d of [DB, `${DB}_copy`, `${DB}_resumed`, `${DB}_clean`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await conn.end();
    await closeClient();
  });

  test('a chunked full restores with point-in-time replay to exactly the live tables; triggers fire only for replayed rows', async () => {
    await withWorker(setup.config, async () => {
      full = await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
      // After the full: rows the replay must bring (and the trigger writes audit rows for them on the source).
      await conn.query(`INSERT INTO ${DB}.big (name, city, amount) VALUES ('late 1', 'Bern', 1), ('late 2', NULL, 2)`);
      await conn.query(`UPDATE ${DB}.big SET city = 'Basel' WHERE id BETWEEN 200 AND 260`);
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
      const restored = await startPitr(client, setup.config, { cluster: 'test', database: DB, target: parseTarget('latest'), into: `${DB}_copy`, requestedBy: 'jest' });
      await restored.result();
    });
    expect(full.parallel).not.toBeNull();
    const bigChunks = full.parallel!.chunks.filter((c) => c.table === 'big');
    expect(bigChunks.length).toBeGreaterThan(3);
    expect(bigChunks.reduce((n, c) => n + c.rows, 0)).toBe(6004);
    expect(full.tables.find((t) => t.table === 'big')?.rows).toBe(6004);
    expect(full.parallel!.chunks.filter((c) => c.table === 'strkey').map((c) => c.range)).toEqual([null]);
    expect(full.artifacts.map((a) => a.name)).toEqual(expect.arrayContaining([full.parallel!.schema, full.parallel!.triggers, ...full.parallel!.chunks.map((c) => c.artifact)]));

    expect(await tableChecksums(conn, `${DB}_copy`)).toEqual(await tableChecksums(conn, DB));
    // The audit table has exactly the source's rows: the trigger did not fire while the chunks went in.
    expect(await count(conn, `SELECT COUNT(*) AS n FROM ${DB}_copy.audit`)).toBe(3);
    const [triggers] = await conn.query<RowDataPacket[]>(`SELECT TRIGGER_NAME AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${DB}_copy'`);
    expect(triggers.map((r) => String(r.t))).toEqual(['big_ai']);
    expect(await count(conn, `SELECT COUNT(*) AS n FROM ${DB}_copy.cities`)).toBeGreaterThan(0);
    // The secondary indexes the load dropped are back, the same as the source's.
    const indexes = async (db: string) =>
      (await conn.query<RowDataPacket[]>(`SELECT INDEX_NAME AS i, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS c, MAX(NON_UNIQUE) AS u FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'big' GROUP BY INDEX_NAME ORDER BY INDEX_NAME`, [db]))[0].map((r) => `${String(r.i)}(${String(r.c)}) ${String(r.u)}`);
    expect(await indexes(`${DB}_copy`)).toEqual(await indexes(DB));
  });

  test('a load stopped after some chunks resumes from its checkpoint and equals a clean load', async () => {
    const repository = openRepository(setup.config);
    const { backups } = await repository.reader().scan('test');
    const cluster = setup.config.clusters[0]!;
    const outcome = planRestore({ cluster: 'test', database: DB, target: { kind: 'latest' }, backups: backups.filter((b) => b.manifest.id === full.id), chainState: null, now: new Date() });
    if (!outcome.ok) throw new Error(outcome.reason);
    const plan = { ...outcome.plan, binlogs: [], stop: { kind: 'end' as const } };
    const base = { cluster, product, storage: repository.storage, plan, confine: false, onProgress: () => undefined };

    await restoreDatabase({ ...base, into: `${DB}_clean`, marker: 'clean' });

    // First attempt: stopped (its client sessions killed) once two chunks are in.
    let checkpoint: LoadCheckpoint | null = null;
    const stop = new AbortController();
    const first = await restoreDatabase({
      ...base,
      into: `${DB}_resumed`,
      marker: 'resume',
      signal: stop.signal,
      onCheckpoint: (c) => {
        checkpoint = structuredClone(c);
        if (c.done.length >= 2) stop.abort();
      },
    }).then(
      () => 'finished',
      (error: unknown) => String(error),
    );
    expect(first).toMatch(/cancelled/);
    const left = checkpoint as LoadCheckpoint | null;
    expect(left?.done.length).toBeGreaterThanOrEqual(2);
    expect(left?.done.length).toBeLessThan(plan.full.parallel!.chunks.length);
    const before = await count(conn, `SELECT COUNT(*) AS n FROM ${DB}_resumed.big`);
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(6004);

    // Second attempt: from the checkpoint, loads only what is missing.
    const second = await restoreDatabase({ ...base, into: `${DB}_resumed`, marker: 'resume', resume: left });
    expect(second.parallel?.chunks).toBe(plan.full.parallel!.chunks.length);
    expect(second.parallel!.resumed + left!.done.length).toBeGreaterThanOrEqual(2);
    expect(await tableChecksums(conn, `${DB}_resumed`)).toEqual(await tableChecksums(conn, `${DB}_clean`));
    expect(await count(conn, `SELECT COUNT(*) AS n FROM ${DB}_resumed.audit`)).toBe(1);
  });

  test('a drill restores the chunked full and its chain into a throwaway server (load not binlogged there) and passes', async () => {
    await withWorker(setup.config, async () => {
      const run = await runCli(['drill', 'run', '--cluster', 'test', '--rpo', '1h', '--wait', '--json', '--config', setup.configPath]);
      expect(run.stderr).toBe('');
      const { report } = JSON.parse(run.stdout);
      expect(report).toMatchObject({ passed: true, problems: [], databases: [DB] });
      expect(report.checks.find((c: { what: string }) => c.what === `${DB}: row counts at the snapshot`)).toMatchObject({ ok: true });
      expect(report.checks.find((c: { what: string }) => c.what === 'schema objects')).toMatchObject({ ok: true, detail: expect.stringContaining('triggers 1/1') });
    });
  });
});

describe.each(products())('on %s, repository in an encrypted S3 bucket', (product) => {
  test('a chunked full streams every chunk sealed into the bucket and restores to the same tables', async () => {
    const db = 'pars3';
    const conn = await rootConnection(product);
    const { client, close } = await temporalClient();
    try {
      for (const d of [db, `${db}_copy`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
      await conn.query(`CREATE DATABASE ${db}`);
      await conn.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY, v VARCHAR(40), KEY kv (v)) ENGINE=InnoDB`);
      await conn.query(`INSERT INTO ${db}.t SELECT a.n * 1000 + b.n * 100 + c.n * 10 + d.n, CONCAT('v', a.n, b.n, c.n, d.n) FROM ${DIGITS} a, ${DIGITS} b, ${DIGITS} c, ${DIGITS} d`);
      await conn.query(`ANALYZE TABLE ${db}.t`);
      const setup = parallelConfig(`pars3-${product}`, product, db, { threads: 2, chunkRows: 2000 }, undefined, { s3: true, encrypted: true });
      const full = await withWorker(setup.config, async () => {
        const m = await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
        const restored = await startPitr(client, setup.config, { cluster: 'test', database: db, target: parseTarget('latest'), into: `${db}_copy`, requestedBy: 'jest' });
        await restored.result();
        return m;
      });
      expect(full.encryption).toMatchObject({ keyId: 'k1' });
      expect(full.parallel!.chunks.length).toBeGreaterThanOrEqual(4);
      const stored = await s3Objects(setup.config.repository.s3!.prefix);
      const chunk = stored.find((o) => o.key.endsWith(full.parallel!.chunks[0]!.artifact));
      expect(chunk).toBeDefined();
      expect(chunk!.body.includes(Buffer.from('INSERT INTO'))).toBe(false); // sealed, not readable
      expect(await tableChecksums(conn, `${db}_copy`)).toEqual(await tableChecksums(conn, db));
    } finally {
      for (const d of [db, `${db}_copy`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
      await conn.end();
      await close();
    }
  });
});

describe.each(products())('on %s, the worker SIGKILLed in the middle of a chunked load', (product) => {
  test('another worker resumes the load from the checkpoint in its last heartbeat and the restore equals the source', async () => {
    const db = 'parkill';
    const conn = await rootConnection(product);
    const { client, close } = await temporalClient();
    // About 1 s per chunk whatever the machine: the kill lands mid-load by construction.
    const setup = parallelConfig(`parkill-${product}`, product, db, { threads: 2, chunkRows: 10_000 }, { threads: 1, maxMiBPerSecond: 1 });
    const worker = spawnCliWorker(setup.configPath, path.join(setup.dir, 'worker-1.log'));
    try {
      for (const d of [db, `${db}_copy`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
      await conn.query(`CREATE DATABASE ${db}`);
      await conn.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY, pad VARCHAR(100) NOT NULL, KEY kp (pad)) ENGINE=InnoDB`);
      for (let k = 0; k < 12; k++) {
        await conn.query(`INSERT INTO ${db}.t SELECT ${k * 10000} + a.n * 1000 + b.n * 100 + c.n * 10 + d.n, REPEAT(SHA2(a.n * 1000 + b.n * 100 + c.n * 10 + d.n + ${k}, 256), 1) FROM ${DIGITS} a, ${DIGITS} b, ${DIGITS} c, ${DIGITS} d`);
      }
      await conn.query(`ANALYZE TABLE ${db}.t`);
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
      const handle = await startPitr(client, setup.config, { cluster: 'test', database: db, target: parseTarget('latest'), into: `${db}_copy`, requestedBy: 'jest', timeouts: { heartbeat: '4 seconds' } });
      // Until the server holds a heartbeat whose checkpoint has three chunks in.
      for (;;) {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        const payload = pending.find((a) => a.activityType?.name === 'restoreDatabase')?.heartbeatDetails?.payloads?.[0];
        const details = payload ? (defaultPayloadConverter.fromPayload(payload) as { checkpoint?: { done?: string[] } }) : null;
        if ((details?.checkpoint?.done?.length ?? 0) >= 3) break;
        if (worker.exitCode !== null) throw new Error(`the worker exited early; see ${setup.dir}/worker-1.log`);
        await new Promise((r) => setTimeout(r, 200));
      }
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      const result = (await withWorker(setup.config, () => handle.result())) as { parallel: { chunks: number; fromCheckpoint: number } };
      expect(result.parallel.chunks).toBeGreaterThanOrEqual(10);
      expect(result.parallel.fromCheckpoint).toBeGreaterThanOrEqual(3);
      expect(result.parallel.fromCheckpoint).toBeLessThan(result.parallel.chunks);
      expect(await tableChecksums(conn, `${db}_copy`)).toEqual(await tableChecksums(conn, db));
    } finally {
      if (worker.exitCode === null) worker.kill('SIGKILL');
      for (const d of [db, `${db}_copy`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
      await conn.end();
      await close();
    }
  });
});
