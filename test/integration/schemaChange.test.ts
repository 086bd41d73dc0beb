/**
 * Index changes against the real servers, on a table of 1,000,000 rows: added online while
 * a write load runs (every write of the load succeeds), after a schema backup and a
 * second person's approval, verified by EXPLAIN, then rolled back on request; a verify
 * query that cannot use the new index rolls the change back by itself; a build over the
 * abort limit is stopped and the server keeps the table as it was; a dry run reports the
 * table, the disk, the server's online answer and a long transaction in the way, and
 * changes nothing. Nothing here waits on the clock: each step polls (bounded) for a state
 * the workflow or the server reports.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { approvalState, decide } from '../../src/client/restores';
import { requestRollback, startSchemaChange } from '../../src/client/schemaChange';
import { ManifestSchema } from '../../src/domain/manifest';
import { parseIndexChange, SchemaChangeReportSchema } from '../../src/domain/schemaChange';
import { localRepositoryRoot } from '../../src/repository';
import { schemaChangeQuery, type SchemaChangeResult } from '../../src/workflows/schemaChange';
import { asPerson, makeTestConfig, products, rootConnection, runCli, server, temporalClient, withWorker } from '../harness/context';

const ROWS = 1_000_000;
const PASSWORD = 'Schema-test-7';

describe.each(products())('index changes on %s', (product) => {
  const DB = `sc_${product}`;
  let root: Connection;
  let client: Client;
  let closeClient: () => Promise<void>;

  const setup = (name: string, schemaChange: Record<string, unknown>) =>
    makeTestConfig(`schema-${name}-${product}`, {
      product,
      mutate: (raw) => {
        const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        c.approvers = { 'schema-change': ['alice', 'bob'] };
        c.schemaChange = { diskHeadroomGiB: 1, sampleEvery: '300ms', longTransaction: '1s', ...schemaChange };
      },
    });
  const indexes = async (): Promise<string[]> =>
    (await root.query<RowDataPacket[]>('SELECT DISTINCT INDEX_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [DB, 'orders']))[0].map((r) => String(r.n)).sort();
  const change = (sql: string) => parseIndexChange(sql, DB);
  /** Until the run reports the phase (polled, bounded). */
  const phase = async (workflowId: string, wanted: string): Promise<void> => {
    for (let i = 0; i < 1200; i++) {
      const s = await client.workflow.getHandle(workflowId).query(schemaChangeQuery).catch(() => null);
      if (s?.phase === wanted) return;
      if (s?.phase === 'done') throw new Error(`the run ended (${s.text}) before ${wanted}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`never reached ${wanted}`);
  };
  /** Until the run waits for a decision (polled, bounded). */
  const approvalPending = async (workflowId: string): Promise<void> => {
    for (let i = 0; i < 1200; i++) {
      if ((await approvalState(client, workflowId).catch(() => null))?.status === 'pending') return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('never asked for an approval');
  };
  /** A write load on the table until stopped: inserts and updates, each counted, each error kept. */
  const writeLoad = async () => {
    const s = server(product);
    const conn = await createConnection({ host: s.host, port: s.port, user: 'sc_app', password: PASSWORD, database: DB });
    let stop = false;
    const counts = { writes: 0, inserts: 0, errors: [] as string[] };
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await conn.query('INSERT INTO orders (customer_id, status, created_at, note) VALUES (?, ?, NOW(), ?)', [i % 1000, i % 5, `load ${i}`]);
          counts.inserts += 1;
          await conn.query('UPDATE orders SET status = ? WHERE id = ?', [i % 5, 1 + ((i * 7919) % ROWS)]);
          counts.writes += 2;
        } catch (error) {
          counts.errors.push(String((error as Error).message));
        }
      }
    })();
    return {
      counts,
      stop: async () => {
        stop = true;
        await loop;
        await conn.end();
        return counts;
      },
    };
  };

  beforeAll(async () => {
    root = await rootConnection(product);
    await root.query(`DROP DATABASE IF EXISTS ${DB}`);
    await root.query(`CREATE DATABASE ${DB}`);
    await root.query(`CREATE TABLE ${DB}.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, status TINYINT NOT NULL, created_at DATETIME NOT NULL, note VARCHAR(40) NOT NULL, KEY idx_customer (customer_id)) ENGINE=InnoDB`);
    await root.query(`CREATE TABLE ${DB}.digits (d INT PRIMARY KEY)`);
    await root.query(`INSERT INTO ${DB}.digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)`);
    await root.query(
      `INSERT INTO ${DB}.orders (customer_id, status, created_at, note)
       SELECT n % 50000, n % 5, TIMESTAMP('2026-01-01') + INTERVAL (n % 525600) MINUTE, CONCAT('n', n)
       FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * d.d + 10000 * e.d + 100000 * f.d AS n
             FROM ${DB}.digits a, ${DB}.digits b, ${DB}.digits c, ${DB}.digits d, ${DB}.digits e, ${DB}.digits f) x`,
    );
    await root.query(`CREATE TABLE ${DB}.legacy (id INT PRIMARY KEY, v INT) ENGINE=MyISAM`);
    await root.query(`CREATE USER IF NOT EXISTS 'sc_app'@'%' IDENTIFIED BY '${PASSWORD}'`);
    await root.query(`GRANT SELECT, INSERT, UPDATE ON ${DB}.* TO 'sc_app'@'%'`);
    await root.query(`ANALYZE TABLE ${DB}.orders`);
    ({ client, close: closeClient } = await temporalClient({ identity: 'dbops-cli/carol@jest' }));
  }, 300_000);
  // Each test starts from the table as created, whatever the one before left.
  afterEach(async () => {
    for (const index of await indexes()) if (!['PRIMARY', 'idx_customer'].includes(index)) await root.query(`ALTER TABLE ${DB}.orders DROP INDEX \`${index}\``);
  });
  afterAll(async () => {
    await root.query(`DROP DATABASE IF EXISTS ${DB}`);
    await root.query("DROP USER IF EXISTS 'sc_app'@'%'");
    await root.end();
    await closeClient();
  });

  test('a dry run reports the table, the disk, the online answer and a transaction in the way, and changes nothing; an existing name or a MyISAM table is refused', async () => {
    const { config } = setup('dry', {});
    const idle = await rootConnection(product);
    await idle.query(`START TRANSACTION; UPDATE ${DB}.orders SET status = status WHERE id = 1`);
    // Until the server counts the transaction older than longTransaction (1 s): polled, bounded.
    for (let i = 0; ; i++) {
      const [old] = await root.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ? AND trx_started <= NOW() - INTERVAL 1 SECOND', [idle.threadId]);
      if (Number(old[0]?.n) > 0) break;
      if (i > 300) throw new Error('the transaction never aged');
      await new Promise((r) => setTimeout(r, 100));
    }
    try {
      const [dry, taken, myisam] = await withWorker(config, async () =>
        Promise.all([
          startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('CREATE INDEX idx_created ON orders (created_at)'), verifyQueries: ["SELECT id FROM orders WHERE created_at >= '2026-03-01' AND created_at < '2026-03-02'"], dryRun: true, requestedBy: 'carol' }, new Date(Date.now() - 3)).then((h) => h.result()),
          startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('ALTER TABLE orders ADD INDEX idx_customer (status)'), requestedBy: 'carol' }, new Date(Date.now() - 2)).then((h) => h.result()),
          startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('ALTER TABLE legacy ADD INDEX idx_v (v)'), requestedBy: 'carol' }, new Date(Date.now() - 1)).then((h) => h.result()),
        ]),
      );
      expect(dry.status).toBe('dry-run');
      expect(dry.plan.table).toMatchObject({ engine: 'InnoDB' });
      expect(dry.plan.table!.rowsEstimate).toBeGreaterThan(ROWS / 2);
      expect(dry.plan.onlineRefusal).toBeNull();
      expect(dry.plan.freeBytes).toBeGreaterThan(0);
      expect(dry.plan.blockers).toEqual(expect.arrayContaining([expect.objectContaining({ id: idle.threadId, what: 'long transaction' })]));
      expect(dry.plan.before).toEqual([expect.objectContaining({ usesIndex: false })]);
      expect(dry.plan.statement).toBe(`ALTER TABLE \`${DB}\`.\`orders\` ADD INDEX \`idx_created\` (\`created_at\`), ALGORITHM=INPLACE, LOCK=NONE`);
      expect(dry.plan.rollback).toBe(`ALTER TABLE \`${DB}\`.\`orders\` DROP INDEX \`idx_created\`, ALGORITHM=INPLACE, LOCK=NONE`);
      expect(taken.status).toBe('refused');
      expect(taken.why).toMatch(/already has an index named idx_customer/);
      expect(myisam.status).toBe('refused');
      expect(myisam.why).toMatch(/MyISAM, not InnoDB/);
      expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
    } finally {
      await idle.end();
    }
  }, 120_000);

  test('the CLI: a statement that is not an index change exits 2 naming what is accepted; a dry run prints the plan', async () => {
    const { config, configPath } = setup('cli', {});
    const bad = await runCli(['schema', 'change', '--cluster', 'test', '--database', DB, '--sql', 'ALTER TABLE orders ADD COLUMN x INT', '--config', configPath]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--sql: only ADD \[UNIQUE\] INDEX \/ KEY is an index change.*dbops runs one index change per run/);
    const dry = await withWorker(config, () =>
      runCli(['schema', 'change', '--cluster', 'test', '--database', DB, '--sql', 'CREATE INDEX idx_created ON orders (created_at)', '--verify-query', "SELECT id FROM orders WHERE created_at > '2026-12-01'", '--dry-run', '--wait', '--as', 'carol', '--config', configPath]),
    );
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^dry-run: CREATE INDEX idx_created ON sc_\w+\.orders \(created_at\)/);
    expect(dry.stdout).toMatch(/online +accepted \(ALGORITHM=INPLACE, LOCK=NONE\)/);
    expect(dry.stdout).toMatch(/rollback +ALTER TABLE `sc_\w+`\.`orders` DROP INDEX `idx_created`/);
    expect(dry.stdout).toMatch(/before query 1: orders \w+ via/);
    expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
  }, 120_000);

  test('added online under a write load after a schema backup and approval, verified by EXPLAIN, then rolled back on request', async () => {
    const { config } = setup('add', { watchFor: '1h' });
    const [[start]] = await root.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${DB}.orders`);
    let inserted = 0;
    const load = await writeLoad();
    const verify = "SELECT id, status FROM orders WHERE created_at >= '2026-03-01' AND created_at < '2026-03-02'";
    const result = await withWorker(config, async () => {
      const handle = await startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('ALTER TABLE orders ADD INDEX idx_created (created_at)'), verifyQueries: [verify], requestedBy: 'carol' });
      await approvalPending(handle.workflowId);
      // The requester cannot approve their own change; another person can.
      await expect(decide(client, handle.workflowId, 'approve', 'alice', 'me')).rejects.toThrow(/requester cannot approve|not the requester|own run/);
      const beforeBuild = load.counts.writes;
      await asPerson('alice', (c) => decide(c, handle.workflowId, 'approve', 'alice', 'CHG-77 quiet hour'));
      await phase(handle.workflowId, 'watching');
      // Built: the index is there, and the load wrote all along (nothing failed, nothing waited for the build).
      expect(await indexes()).toEqual(['PRIMARY', 'idx_created', 'idx_customer']);
      const duringBuild = load.counts.writes - beforeBuild;
      const counts = await load.stop();
      expect(counts.errors).toEqual([]);
      expect(duringBuild).toBeGreaterThan(0);
      inserted = counts.inserts;
      await requestRollback(client, handle.workflowId, 'carol', 'writes slower after the change');
      return handle.result();
    });
    expect(result.status).toBe('rolled-back');
    expect(result.approval).toMatchObject({ decision: 'approved', by: 'alice' });
    expect(result.build).toMatchObject({ outcome: 'done', adopted: false });
    expect(result.after).toEqual([expect.objectContaining({ usesIndex: true })]);
    expect(result.after[0]!.accesses.some((a) => a.key === 'idx_created')).toBe(true);
    expect(result.rolledBack).toMatchObject({ by: 'carol', automatic: false, reason: 'writes slower after the change' });
    expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
    // The schema as it was, taken before the change: a schema backup in the catalog.
    const manifest = ManifestSchema.parse(JSON.parse(readFileSync(path.join(localRepositoryRoot(config.repository), 'test', 'schema', result.plan.observedAt.slice(0, 10), result.schemaBackupId!, 'manifest.json'), 'utf8')));
    expect(manifest).toMatchObject({ type: 'schema', reason: 'before CREATE INDEX idx_created ON ' + DB + '.orders (created_at)', requestedBy: 'carol' });
    const backup = execFileSync('zstd', ['-dc', path.join(localRepositoryRoot(config.repository), 'test', 'schema', result.plan.observedAt.slice(0, 10), result.schemaBackupId!, 'schema.sql.zst')], { encoding: 'utf8', maxBuffer: 1 << 30 });
    const orders = backup.slice(backup.indexOf(`USE \`${DB}\``));
    expect(orders).toMatch(/CREATE TABLE `orders`/);
    expect(orders).toMatch(/idx_customer/);
    expect(orders).not.toMatch(/idx_created/);
    const report = SchemaChangeReportSchema.parse(JSON.parse(readFileSync(result.reportKey!, 'utf8')));
    expect(report).toMatchObject({ status: 'rolled-back', requestedBy: 'carol', rolledBack: { by: 'carol' } });
    // Every row is still there: the ones before, and each the load inserted.
    const [[count]] = await root.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${DB}.orders`);
    expect(Number(count!.n)).toBe(Number(start!.n) + inserted);
  }, 600_000);

  test('a verify query that cannot use the new index fails the change and rolls it back', async () => {
    const { config } = setup('verify', { watchFor: '0s' });
    const result = await withWorker(config, async () => {
      const handle = await startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('ALTER TABLE orders ADD INDEX idx_status (status)'), verifyQueries: ["SELECT id FROM orders WHERE note = 'n77'"], requestedBy: 'carol' });
      await approvalPending(handle.workflowId);
      await asPerson('bob', (c) => decide(c, handle.workflowId, 'approve', 'bob', 'CHG-78'));
      return handle.result();
    });
    expect(result.status).toBe('rolled-back');
    expect(result.why).toMatch(/verify query 1 does not use idx_status/);
    expect(result.rolledBack).toMatchObject({ by: 'dbops', automatic: true });
    expect(result.build).toMatchObject({ outcome: 'done' });
    expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
  }, 600_000);

  test("a transaction holding the table: the change gives its metadata-lock queue back every lockWait and tries again; the application's writes go on", async () => {
    // longTransaction high: the open transaction does not hold the start back, so the change meets it at the lock.
    const { config } = setup('lock', { lockWait: '1s', lockTries: 100, longTransaction: '1h', watchFor: '0s' });
    const holder = await rootConnection(product);
    await holder.query(`START TRANSACTION; SELECT COUNT(*) FROM ${DB}.orders WHERE id < 10`);
    const load = await writeLoad();
    try {
      const result = await withWorker(config, async () => {
        const handle = await startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('ALTER TABLE orders ADD INDEX idx_lock (customer_id, status)'), requestedBy: 'carol' });
        await approvalPending(handle.workflowId);
        await asPerson('bob', (c) => decide(c, handle.workflowId, 'approve', 'bob', 'CHG-80'));
        // Until the build's heartbeat says it has given the lock back at least twice.
        for (let i = 0; ; i++) {
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          const payload = pending.find((a) => a.activityType?.name === 'applySchemaChange')?.heartbeatDetails?.payloads?.[0];
          const details = payload ? (defaultPayloadConverter.fromPayload(payload) as { lockTries?: number }) : null;
          if ((details?.lockTries ?? 0) >= 3) break;
          if (i > 600) throw new Error(`the change never retried its lock: ${JSON.stringify(details)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
        // The application's writes go on while the change keeps retrying (polled, bounded).
        const writesWhileWaiting = load.counts.writes;
        for (let i = 0; load.counts.writes <= writesWhileWaiting + 10; i++) {
          if (i > 600) throw new Error(`the writes stopped while the change waited (${load.counts.writes})`);
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
        await holder.query('COMMIT');
        return handle.result();
      });
      const counts = await load.stop();
      expect(counts.errors).toEqual([]);
      expect(result.status).toBe('done');
      expect(result.build).toMatchObject({ outcome: 'done' });
      expect(result.build!.lockTries).toBeGreaterThanOrEqual(3);
      expect(await indexes()).toEqual(['PRIMARY', 'idx_customer', 'idx_lock']);
    } finally {
      await load.stop().catch(() => undefined);
      await holder.end();
    }
  }, 600_000);

  test('a build over the abort limit is stopped and the server discards it', async () => {
    // An open transaction on the table holds the statement at its metadata lock (lockWait is long),
    // so it is running when the first sample comes, whatever the machine's speed: with the
    // statement and the sampler, Threads_running is at least 2, over the limit of 1.
    const { config } = setup('abort', { abortAt: { threadsRunning: 1 }, abortAfter: 1, pauseAt: { threadsRunning: 1000 }, longTransaction: '1h', lockWait: '10m' });
    const holder = await rootConnection(product);
    await holder.query(`START TRANSACTION; SELECT COUNT(*) FROM ${DB}.orders WHERE id < 10`);
    try {
      const result = await withWorker(config, async () => {
        const handle = await startSchemaChange(client, config, { cluster: 'test', database: DB, change: change('ALTER TABLE orders ADD INDEX idx_note (note)'), requestedBy: 'carol' });
        await approvalPending(handle.workflowId);
        await asPerson('alice', (c) => decide(c, handle.workflowId, 'approve', 'alice', 'CHG-79'));
        return handle.result();
      });
      expect(result.status).toBe('aborted');
      expect(result.why).toMatch(/Threads_running \d+ > 1 for 1 samples in a row/);
      expect(await indexes()).toEqual(['PRIMARY', 'idx_customer']);
    } finally {
      await holder.end();
    }
  }, 600_000);
});

export type { SchemaChangeResult };
