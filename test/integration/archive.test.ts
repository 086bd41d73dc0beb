/**
 * Archiving against the real servers (MariaDB and MySQL) and Temporal: what a DBA checks after moving history
 * out of a live table. Every row is in exactly one place (counts, row checksums, no key in
 * both tables), also when the worker is SIGKILLed mid-run; load pauses the run and it
 * resumes; operators pause, resume and cancel; bad jobs are refused before a row moves.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import * as path from 'node:path';
import { archiveInput, resolveArchiveJob, startArchive } from '../../src/client/archives';
import { applySchedules } from '../../src/client/schedules';
import { checksumSelect, type ArchiveJobInput } from '../../src/domain/archive';
import { archiveProgressQuery, cancelArchiveSignal, pauseArchiveSignal, resumeArchiveSignal, type ArchiveResult } from '../../src/workflows/archive';
import { makeTestConfig, products, rootConnection, runCli, spawnCliWorker, temporalClient, withWorker } from '../harness/context';

const DB = 'archtest';
const COLUMNS = ['id', 'customer_id', 'status', 'total', 'note', 'created_at'];
const PREDICATE = 'created_at < NOW() - INTERVAL 90 DAY';
/** Seeded minutes after NOW() - 300 days: no row within a day of the boundary (210 days in); those move two days later. */
const GAP_FROM = (210 - 1) * 1440;
const GAP_MINUTES = 2 * 1440;

/**
 * `rows` orders over 300 days; created_at is scattered over the keys, so old rows are not one
 * contiguous range. No row lies within a day of the 90-day boundary, so the rows the predicate
 * selects stay the same however long the test takes (up to a day).
 */
async function seedOrders(conn: Connection, table: string, rows: number): Promise<void> {
  await conn.query(`DROP TABLE IF EXISTS ${DB}.${table}, ${DB}.${table}_history`);
  await conn.query(
    `CREATE TABLE ${DB}.${table} (
       id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
       customer_id INT NOT NULL,
       status VARCHAR(16) NOT NULL,
       total DECIMAL(10,2) NOT NULL,
       note VARCHAR(64) NULL,
       created_at DATETIME NOT NULL,
       KEY created_at (created_at)
     ) ENGINE=InnoDB`,
  );
  await conn.query(
    `INSERT INTO ${DB}.${table} (id, customer_id, status, total, note, created_at)
     SELECT seq, seq % 5000, ELT(1 + seq % 4, 'paid', 'shipped', 'cancelled', 'refunded'), (seq % 100000) / 100,
            IF(seq % 7 = 0, NULL, CONCAT('note ', seq, IF(seq % 11 = 0, ' ünïcødé ☕', ''))),
            NOW() - INTERVAL 300 DAY + INTERVAL (((seq * 7919) % 432000) + IF((seq * 7919) % 432000 BETWEEN ${GAP_FROM} AND ${GAP_FROM + GAP_MINUTES - 1}, ${GAP_MINUTES}, 0)) MINUTE
       FROM (SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS seq
               FROM ${DB}.digits a, ${DB}.digits b, ${DB}.digits c, ${DB}.digits e, ${DB}.digits f, ${DB}.digits g) numbers
      WHERE seq <= ${rows}`,
  );
}

interface Totals {
  rows: number;
  sum: bigint;
  xor: bigint;
}

async function totals(conn: Connection, table: string, where = '1'): Promise<Totals> {
  const [[r]] = (await conn.query(`SELECT ${checksumSelect(COLUMNS)} FROM ${DB}.${table} WHERE ${where}`)) as unknown as [[RowDataPacket]];
  return { rows: Number(r?.n), sum: BigInt(String(r?.s)), xor: BigInt(String(r?.x)) };
}

async function tableExists(conn: Connection, table: string): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [DB, table]);
  return rows.length > 0;
}

/** history ∪ remaining = original, row for row, and no key in both tables. */
async function expectConserved(conn: Connection, table: string, original: Totals): Promise<{ moved: number; left: number }> {
  const left = await totals(conn, table);
  const moved = await totals(conn, `${table}_history`);
  expect(left.rows + moved.rows).toBe(original.rows);
  expect(left.sum + moved.sum).toBe(original.sum);
  expect(left.xor ^ moved.xor).toBe(original.xor);
  const [[both]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${DB}.${table} t JOIN ${DB}.${table}_history h USING (id)`)) as unknown as [[RowDataPacket]];
  expect(Number(both?.n)).toBe(0);
  return { moved: moved.rows, left: left.rows };
}

function job(table: string, extra: Partial<ArchiveJobInput> = {}): ArchiveJobInput {
  return { cluster: 'test', database: DB, table, where: PREDICATE, to: `${table}_history`, ...extra };
}

describe.each(products())('on %s', (product) => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await rootConnection(product);
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    // Row numbers for seeding, the same on both products (MySQL has no sequence engine).
    await conn.query(`CREATE TABLE IF NOT EXISTS ${DB}.digits (d INT PRIMARY KEY)`);
    await conn.query(`INSERT IGNORE INTO ${DB}.digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)`);
  });
  afterAll(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await conn.end();
  });

  test('rows archived with the worker SIGKILLed mid-run: nothing lost, nothing duplicated', async () => {
    // A million rows on MariaDB; on MySQL a fifth of that keeps the suite's time in bounds (the same kill, mid-run).
    const rows = product === 'mariadb' ? 1_000_000 : 200_000;
    await seedOrders(conn, 'orders', rows);
    const original = await totals(conn, 'orders');
    const old = await totals(conn, 'orders', PREDICATE);
    expect(old.rows).toBeGreaterThan(rows * 0.69);

    const setup = makeTestConfig(`archive-crash-${product}`, { product });
    const first = spawnCliWorker(setup.configPath, path.join(setup.dir, 'worker-1.log'));
    const { client, close } = await temporalClient();
    try {
      const config = setup.config;
      const j = resolveArchiveJob(config, { fields: job('orders', { batchSize: 2000 }) });
      const handle = await startArchive(client, config, {
        ...archiveInput(config, j, { yes: { by: 'alice', reason: 'INC-7 history cleanup' }, requestedBy: 'jest' }),
        job: j,
        timeouts: { heartbeat: '3 seconds' },
      });
      // Kill the worker once a good part has moved (mid-run, likely mid-transaction).
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (Date.now() > deadline) throw new Error(`the archive never got going; see ${setup.dir}/worker-1.log`);
        if ((await tableExists(conn, 'orders_history')) && (await totals(conn, 'orders_history')).rows > rows * 0.15) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const atKill = await expectConserved(conn, 'orders', original);
      expect(atKill.moved).toBeLessThan(old.rows);

      const result = await withWorker(config, () => handle.result() as Promise<ArchiveResult>);
      expect(result.status).toBe('done');
      expect(result.verification?.ok).toBe(true);
      expect(result.verification?.moved.rows).toBe(old.rows);
      expect(result.approval).toMatchObject({ decision: 'approved', by: 'alice' });

      const after = await expectConserved(conn, 'orders', original);
      expect(after.moved).toBe(old.rows);
      // The run fixed NOW() at plan time: what it left behind is judged at that time, not the wall clock's.
      expect((await totals(conn, 'orders', `created_at < FROM_UNIXTIME(${result.plan.asOf}) - INTERVAL 90 DAY`)).rows).toBe(0);
      expect(await totals(conn, 'orders_history')).toEqual(old);
      // No assertion on activity attempts: a mover runs in 3-second chunks, so the kill lands
      // inside one (retried from its heartbeat) or between two (the next one starts afresh);
      // which one is timing, and the rows are conserved either way (checked above).
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL');
      await close();
    }
  }, 300_000);

  describe('with one worker', () => {
    const setup = makeTestConfig(`archive-${product}`, { aliases: ['other'], product });
    const config = setup.config;
    const cli = (args: string[]) => runCli([...args, '--config', setup.configPath]);
    let client: Awaited<ReturnType<typeof temporalClient>>['client'];
    let closeClient: () => Promise<void>;
    beforeAll(async () => {
      ({ client, close: closeClient } = await temporalClient());
    });
    afterAll(async () => closeClient());

    const start = (j: ArchiveJobInput, options: { yes?: boolean } = {}) => {
      const resolved = resolveArchiveJob(config, { fields: j });
      return startArchive(client, config, {
        ...archiveInput(config, resolved, { yes: options.yes ? { by: 'alice', reason: 'test' } : null, requestedBy: 'jest' }),
        job: resolved,
      });
    };

    test('plan is a dry run: it prints the SQL and touches nothing', async () => {
      await seedOrders(conn, 'plan_orders', 5000);
      const before = await totals(conn, 'plan_orders');
      const r = await withWorker(config, () =>
        cli(['archive', 'plan', '--cluster', 'test', '--database', DB, '--table', 'plan_orders', '--where', PREDICATE, '--to', 'plan_orders_history', '--batch-size', '500']),
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`into        test:${DB}.plan_orders_history (will be created)`);
      expect(r.stdout).toContain(`CREATE TABLE IF NOT EXISTS \`${DB}\`.\`plan_orders_history\` LIKE \`${DB}\`.\`plan_orders\``);
      expect(r.stdout).toContain(`INSERT INTO \`${DB}\`.\`plan_orders_history\``);
      expect(r.stdout).toContain(`DELETE FROM \`${DB}\`.\`plan_orders\` WHERE \`id\` >= ? AND \`id\` <= ? AND (${PREDICATE})`);
      expect(r.stdout).toMatch(/index\s+created_at/);
      const rows = (await totals(conn, 'plan_orders', PREDICATE)).rows;
      expect(r.stdout).toContain(`rows        ${rows} in keys`);
      expect(await totals(conn, 'plan_orders')).toEqual(before);
      expect(await tableExists(conn, 'plan_orders_history')).toBe(false);
    }, 60_000);

    test('bad jobs are refused before any row moves, each naming what to fix', async () => {
      await seedOrders(conn, 'bad_orders', 2000);
      await conn.query(`DROP TABLE IF EXISTS ${DB}.nopk, ${DB}.bad_dest, ${DB}.latin_dest, ${DB}.clash_dest, ${DB}.binpk, ${DB}.aria_t`);
      await conn.query(`CREATE TABLE ${DB}.latin_dest LIKE ${DB}.bad_orders`);
      await conn.query(`ALTER TABLE ${DB}.latin_dest MODIFY note VARCHAR(64) CHARACTER SET latin1 NULL`);
      await conn.query(`CREATE TABLE ${DB}.clash_dest LIKE ${DB}.bad_orders`);
      await conn.query(`INSERT INTO ${DB}.clash_dest SELECT * FROM ${DB}.bad_orders WHERE ${PREDICATE} ORDER BY id LIMIT 2`);
      await conn.query(`CREATE TABLE ${DB}.binpk (id BINARY(16) PRIMARY KEY, created_at DATETIME, KEY (created_at)) ENGINE=InnoDB`);
      await conn.query(`CREATE TABLE ${DB}.aria_t (id INT PRIMARY KEY, created_at DATETIME, KEY (created_at)) ENGINE=${product === 'mariadb' ? 'Aria' : 'MyISAM'}`);
      await conn.query(`CREATE TABLE ${DB}.nopk (v INT, created_at DATETIME, KEY (created_at)) ENGINE=InnoDB`);
      await conn.query(`INSERT INTO ${DB}.nopk VALUES (1, '2020-01-01')`);
      await conn.query(`CREATE TABLE ${DB}.bad_dest (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, status VARCHAR(16)) ENGINE=InnoDB`);
      const before = await totals(conn, 'bad_orders');
      const plan = (table: string, where: string, to: string) =>
        cli(['archive', 'run', '--yes', '--as', 'alice', '--wait', '--cluster', 'test', '--database', DB, '--table', table, '--where', where, '--to', to]);
      const cases: Array<[string, string, string, RegExp]> = [
        ['bad_orders', 'note LIKE "note 1%"', 'x_history', /no index can serve the predicate/],
        ['bad_orders', 'created_at <<< 3', 'x_history', /where: the predicate does not parse/],
        ['bad_orders', 'created_at < NOW(); DROP TABLE bad_orders', 'x_history', /--where: the predicate contains ";"/],
        ['bad_orders', 'no_such_column < 3', 'x_history', /where: the predicate does not parse.*no_such_column/],
        ['nopk', 'created_at < NOW()', 'nopk_history', /has no primary key/],
        ['bad_orders', PREDICATE, 'bad_dest', /to: test:archtest.bad_dest cannot take the rows.*column customer_id is missing/],
        ['bad_orders', PREDICATE, 'nowhere.x', /to: database nowhere does not exist/],
        ['bad_orders', PREDICATE, 'latin_dest', /column note is latin1\/latin1_swedish_ci, the source has utf8mb4/],
        ['bad_orders', PREDICATE, 'clash_dest', /already holds 2 of the keys about to be archived/],
        ['binpk', 'created_at < NOW()', 'binpk_history', /binary\(16\) primary key/],
        ['aria_t', 'created_at < NOW()', 'aria_history', product === 'mariadb' ? /uses Aria, which has no transactions/ : /uses MyISAM, which has no transactions/],
      ];
      await withWorker(config, async () => {
        for (const [table, where, to, message] of cases) {
          const r = await plan(table, where, to);
          expect({ where, to, code: r.code, stderr: r.stderr }).toEqual({ where, to, code: 1, stderr: expect.stringMatching(message) });
        }
      });
      expect(await totals(conn, 'bad_orders')).toEqual(before);
      expect(await tableExists(conn, 'x_history')).toBe(false);
      expect(await tableExists(conn, 'nopk_history')).toBe(false);
    }, 120_000);

    test('waits for approval; pause, resume and continue-as-new keep every row in one place', async () => {
      await seedOrders(conn, 'ops_orders', 20_000);
      const original = await totals(conn, 'ops_orders');
      const old = await totals(conn, 'ops_orders', PREDICATE);
      await withWorker(config, async () => {
        const handle = await start(job('ops_orders', { batchSize: 200, continueAsNewEvery: 15, throttle: { sleep: '20ms' } }));
        // Nothing moves before a person approves.
        for (let i = 0; i < 50 && !(await cli(['approvals', 'list', '--json'])).stdout.includes(handle.workflowId); i++) await new Promise((r) => setTimeout(r, 200));
        expect(await tableExists(conn, 'ops_orders_history')).toBe(false);
        const refused = await cli(['approvals', 'approve', handle.workflowId, '--as', 'mallory', '--reason', 'me']);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/mallory is not an approver for archive-delete/);
        const ok = await cli(['approvals', 'approve', handle.workflowId, '--as', 'bob', '--reason', 'CHG-9 approved']);
        expect(ok.code).toBe(0);

        // Pause once rows are moving; nothing moves while paused.
        for (let i = 0; i < 100 && (await handle.query(archiveProgressQuery)).progress?.moved === 0; i++) await new Promise((r) => setTimeout(r, 100));
        const paused = await cli(['archive', 'pause', handle.workflowId, '--as', 'carol', '--reason', 'month-end close']);
        expect(paused.stdout).toContain('paused');
        // The batch in flight finishes first; then the run waits.
        for (let i = 0; i < 300 && (await handle.query(archiveProgressQuery)).progress?.phase !== 'paused'; i++) await new Promise((r) => setTimeout(r, 100));
        const during = (await handle.query(archiveProgressQuery)).progress;
        expect(during?.phase).toBe('paused');
        expect(during?.pausedBy).toBe('carol');
        const status = await cli(['archive', 'status', handle.workflowId]);
        expect(status.stdout).toMatch(/paused by carol/);
        // What the Temporal UI shows as the run's current details.
        const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
        expect(metadata.currentDetails).toMatch(/\*\*archive archtest\.ops_orders\*\* on `test`: \d+\/\d+ rows \(\d+ %\) in \d+ batch\(es\), \d+ rows\/s; paused by carol/);
        await new Promise((r) => setTimeout(r, 1000));
        expect((await totals(conn, 'ops_orders_history')).rows).toBe((await handle.query(archiveProgressQuery)).progress?.moved);
        expect((await handle.query(archiveProgressQuery)).progress?.moved).toBe(during?.moved);
        await cli(['archive', 'resume', handle.workflowId, '--as', 'carol']);

        const result = (await handle.result()) as ArchiveResult;
        expect(result.status).toBe('done');
        expect(result.verification?.ok).toBe(true);
        expect(result.approval).toMatchObject({ decision: 'approved', by: 'bob', reason: 'CHG-9 approved' });
        expect(result.progress.runs).toBeGreaterThan(1); // continued as new
        expect(result.log.join('\n')).toMatch(/paused by carol: month-end close[\s\S]*resumed by carol/);
        const done = await cli(['archive', 'status', handle.workflowId]);
        expect(done.stdout).toMatch(/done: \d+ row\(s\).*verified/);
      });
      const after = await expectConserved(conn, 'ops_orders', original);
      expect(after.moved).toBe(old.rows);
    }, 120_000);

    test('Threads_running above the threshold pauses the run; it resumes when the load goes', async () => {
      await seedOrders(conn, 'busy_orders', 10_000);
      const original = await totals(conn, 'busy_orders');
      const sleepers: Connection[] = [];
      for (let i = 0; i < 4; i++) sleepers.push(await rootConnection(product));
      await withWorker(config, async () => {
        // The load lasts until the test ends it, whatever the machine's speed.
        const busy = Promise.allSettled(sleepers.map((s) => s.query('SELECT SLEEP(600)')));
        for (let i = 0; i < 100 && Number(((await conn.query("SHOW GLOBAL STATUS LIKE 'Threads_running'")) as unknown as [RowDataPacket[]])[0][0]?.Value) < 5; i++) await new Promise((r) => setTimeout(r, 100));
        const handle = await start(job('busy_orders', { batchSize: 500, throttle: { maxThreadsRunning: 3, abortThreadsRunning: 50, recheckAfter: '1s' } }), { yes: true });
        let throttled: string | null = null;
        for (let i = 0; i < 600 && !throttled; i++) {
          throttled = (await handle.query(archiveProgressQuery)).progress?.throttled ?? null;
          if (!throttled) await new Promise((r) => setTimeout(r, 100));
        }
        expect(throttled).toMatch(/Threads_running \d+ is above 3/);
        expect((await handle.query(archiveProgressQuery)).progress?.moved).toBe(0);
        for (const s of sleepers) await conn.query(`KILL QUERY ${s.threadId}`);
        await busy;
        const result = (await handle.result()) as ArchiveResult;
        expect(result.status).toBe('done');
        expect(result.log.join('\n')).toMatch(/throttled: Threads_running/);
      });
      for (const s of sleepers) await s.end();
      await expectConserved(conn, 'busy_orders', original);
    }, 60_000);

    test('cancel stops within seconds at a batch boundary and proves the rows moved so far', async () => {
      await seedOrders(conn, 'stop_orders', 40_000);
      const original = await totals(conn, 'stop_orders');
      await withWorker(config, async () => {
        const handle = await start(job('stop_orders', { batchSize: 100, throttle: { sleep: '50ms' } }), { yes: true });
        for (let i = 0; i < 300 && ((await handle.query(archiveProgressQuery)).progress?.moved ?? 0) < 500; i++) await new Promise((r) => setTimeout(r, 100));
        // Paused first, so the cancel lands mid-run however fast the machine moves rows.
        await handle.signal(pauseArchiveSignal, { operator: 'dave' });
        for (let i = 0; i < 300 && (await handle.query(archiveProgressQuery)).progress?.phase !== 'paused'; i++) await new Promise((r) => setTimeout(r, 100));
        await handle.signal(cancelArchiveSignal, { operator: 'dave', reason: 'wrong window' });
        const result = (await handle.result()) as ArchiveResult;
        expect(result.status).toBe('cancelled');
        expect(result.verification).toMatchObject({ ok: true, conserved: true, complete: false });
        expect(result.verification?.remaining.rows).toBeGreaterThan(0);
        const { moved } = await expectConserved(conn, 'stop_orders', original);
        expect(moved).toBe(result.verification?.moved.rows);
      });
    }, 60_000);

    test('to another cluster: insert, compare, delete exactly those keys; generated columns recomputed, TIMESTAMPs unchanged', async () => {
      await seedOrders(conn, 'far_orders', 8000);
      // A generated column (recomputed by the destination, never copied) and a TIMESTAMP (copied unchanged across sessions).
      await conn.query(`ALTER TABLE ${DB}.far_orders ADD COLUMN cents BIGINT AS (total * 100) ${product === 'mariadb' ? 'PERSISTENT' : 'STORED'}, ADD COLUMN seen TIMESTAMP NOT NULL DEFAULT '2026-03-29 01:30:00'`);
      await conn.query(`UPDATE ${DB}.far_orders SET seen = '2026-03-29 01:30:00' + INTERVAL (id % 7200) SECOND`);
      const extra = async () => {
        const [[r]] = (await conn.query(
          `SELECT (SELECT SUM(UNIX_TIMESTAMP(seen)) + SUM(cents) FROM ${DB}.far_orders) AS l, (SELECT SUM(UNIX_TIMESTAMP(seen)) + SUM(cents) FROM ${DB}.far_orders_history) AS h`,
        )) as unknown as [[RowDataPacket]];
        return BigInt(String(r?.l ?? 0)) + BigInt(String(r?.h ?? 0));
      };
      const [[before]] = (await conn.query(`SELECT SUM(UNIX_TIMESTAMP(seen)) + SUM(cents) AS v FROM ${DB}.far_orders`)) as unknown as [[RowDataPacket]];
      const original = await totals(conn, 'far_orders');
      const old = await totals(conn, 'far_orders', PREDICATE);
      const result = await withWorker(config, async () => {
        const handle = await start(job('far_orders', { batchSize: 700, to: `other:${DB}.far_orders_history` }), { yes: true });
        await handle.signal(pauseArchiveSignal, { operator: 'x' }); // harmless before moving; resumed at once
        await handle.signal(resumeArchiveSignal, { operator: 'x' });
        return (await handle.result()) as ArchiveResult;
      });
      expect(result.plan.sameServer).toBe(false);
      expect(result.plan.columns).not.toContain('cents');
      expect(result.verification?.ok).toBe(true);
      expect(await extra()).toBe(BigInt(String(before?.v)));
      const { moved } = await expectConserved(conn, 'far_orders', original);
      expect(moved).toBe(old.rows);
    }, 60_000);

    test('a configured job on a schedule: triggered, it runs the job as configured', async () => {
      await seedOrders(conn, 'sched_orders', 3000);
      const original = await totals(conn, 'sched_orders');
      const scheduled = makeTestConfig(`archive-sched-${product}`, {
        product,
        archiveJobs: [{ name: 'sched-orders', cluster: 'test', database: DB, table: 'sched_orders', where: PREDICATE, to: 'sched_orders_history', batchSize: 400, approval: false }],
        mutate: (raw) => {
          raw.schedules = { entries: [{ cluster: 'test', action: 'archive', job: 'sched-orders', cron: '30 3 * * *' }] };
        },
      });
      const plan = await applySchedules(client, scheduled.config);
      expect(plan.create.map((d) => d.id)).toEqual(['dbops/test/archive/sched-orders']);
      const handle = client.schedule.getHandle('dbops/test/archive/sched-orders');
      try {
        const result = await withWorker(scheduled.config, async () => {
          await handle.trigger();
          let workflowId: string | null = null;
          for (let i = 0; i < 100 && !workflowId; i++) {
            const recent = (await handle.describe()).info.recentActions;
            const action = recent[recent.length - 1]?.action;
            workflowId = action?.type === 'startWorkflow' ? action.workflow.workflowId : null;
            if (!workflowId) await new Promise((r) => setTimeout(r, 100));
          }
          expect(workflowId).toMatch(/^archive\/test\/sched-orders\/scheduled/);
          return (await client.workflow.getHandle(workflowId as string).result()) as ArchiveResult;
        });
        expect(result.status).toBe('done');
        expect(result.plan.job.batchSize).toBe(400);
        expect(result.approval).toBeNull();
        await expectConserved(conn, 'sched_orders', original);
      } finally {
        await handle.delete();
      }
    }, 60_000);
  });
});
