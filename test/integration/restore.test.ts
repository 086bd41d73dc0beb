/**
 * The incident story: data, full backup, writes, incremental, an accidental
 * DELETE FROM orders at time T, more writes, incremental. Restore (a) to the second
 * before T and (b) to just before the DELETE statement: both must equal, checksum for
 * checksum, a snapshot taken just before the DELETE; the live database is untouched.
 * Then table restores with the approval gate, and the bad inputs that must touch nothing.
 */
import type { Client } from '@temporalio/client';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { approvalState, decide, startTableRestore } from '../../src/client/restores';
import { parseTarget } from '../../src/domain/restoreTarget';
import { asPerson, makeTestConfig, products, rootConnection, runCli, temporalClient, withWorker, type TestSetup, sqlOn, checksumsOn } from '../harness/context';
import { seedSampleDatabase } from '../../src/dev/sampleData';

/** The GTID target just before `hit` (the DELETE's GTID), and the GTID the replay then ends on. */
function gtidBefore(hit: string): { target: string; reached: string } {
  const maria = /^(\d+)-(\d+)-(\d+)$/.exec(hit);
  if (maria) {
    const gtid = `${maria[1]}-${maria[2]}-${Number(maria[3]) - 1}`;
    return { target: gtid, reached: gtid };
  }
  const mysql = /^([0-9a-f-]{36}):(\d+)$/.exec(hit);
  if (!mysql) throw new Error(`unexpected GTID ${hit}`);
  return { target: `${mysql[1]}:1-${Number(mysql[2]) - 1}`, reached: `${mysql[1]}:${Number(mysql[2]) - 1}` };
}

describe.each(products())('on %s', (product) => {
  const DB = 'incident';
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  let beforeDelete: Record<string, string>;
  let liveAfter: Record<string, string>;
  let secondBeforeDelete: string;

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Waits until just after the next second boundary, so that writes fall into distinct seconds. */
  async function nextSecond(): Promise<void> {
    await sleep(1000 - (Date.now() % 1000) + 50);
  }
  const sql = (query: string, params: unknown[] = []) => sqlOn(product, query, params);
  const checksums = (db: string) => checksumsOn(product, db);
  async function waitForPendingApproval(workflowId: string): Promise<void> {
    for (let i = 0; i < 300; i++) {
      const state = await approvalState(client, workflowId).catch(() => null);
      if (state?.status === 'pending') return;
      const description = await client.workflow.getHandle(workflowId).describe();
      if (description.status.name !== 'RUNNING') await client.workflow.getHandle(workflowId).result(); // throws the reason
      await sleep(200);
    }
    throw new Error(`${workflowId} never asked for approval`);
  }

  beforeAll(async () => {
    const conn = await rootConnection(product);
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    for (const d of ['incident_a', 'incident_b', 'incident_c']) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await seedSampleDatabase(conn, { database: DB, customers: 40, orders: 600 });
    await conn.end();
    setup = makeTestConfig(`restore-${product}`, { databases: [DB], product });
    ({ client, close: closeClient } = await temporalClient());

    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
      await sql(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) SELECT customer_id, 'paid', total + 1, 'after full', NOW() FROM ${DB}.orders LIMIT 50`);
      await sql(`UPDATE ${DB}.orders SET status = 'shipped' WHERE id % 7 = 0`); // the trigger writes audit_log rows
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
      await sql(`INSERT INTO ${DB}.customers (name, email) VALUES ('Late Customer', 'late@example.com')`);
      // MySQL logs the statement text of row events only with binlog_rows_query_log_events (off by default): on here, off for the DELETE.
      await sql(`${product === 'mysql' ? 'SET SESSION binlog_rows_query_log_events = ON; ' : ''}UPDATE ${DB}.orders SET note = CONCAT(IFNULL(note, ''), ' (checked)') WHERE id < 30`);
      beforeDelete = await checksums(DB);

      await nextSecond();
      secondBeforeDelete = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000).toISOString().replace('.000Z', 'Z');
      await sql(`DELETE FROM ${DB}.orders WHERE total > 0`); // the accident: the WHERE was meant to be much narrower
      await nextSecond();
      await sql(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) VALUES (1, 'new', 9.99, 'after the accident', NOW())`);
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 2000)));
      liveAfter = await checksums(DB);
    });
  });

  afterAll(async () => {
    await closeClient();
  });

  test('(a) to the second before the DELETE, and (b) to just before the DELETE statement: both equal the pre-DELETE snapshot', async () => {
    await withWorker(setup.config, async () => {
      const a = await runCli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', secondBeforeDelete, '--into', 'incident_a', '--wait', '--json', '--config', setup.configPath]);
      expect(a.stderr).toBe('');
      const resultA = JSON.parse(a.stdout);
      expect(resultA.plan.chain.map((c: { type: string }) => c.type)).toEqual(['incremental', 'incremental']);
      expect(resultA.plan.stop.kind).toBe('datetime');

      const b = await runCli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--before-matching', 'DELETE FROM .*orders', '--into', 'incident_b', '--wait', '--json', '--config', setup.configPath]);
      expect(b.stderr).toBe('');
      const resultB = JSON.parse(b.stdout);
      // MariaDB annotates row events with their statement; MySQL's binlog (by default) holds only the row events.
      if (product === 'mariadb') expect(resultB.plan.hit).toMatchObject({ statement: expect.stringMatching(/^DELETE FROM .*orders WHERE total > 0/), from: 'statement' });
      else expect(resultB.plan.hit).toMatchObject({ statement: 'DELETE FROM `incident`.`orders`', from: 'row-event' });
      expect(resultB.reached.file).toBe(resultB.plan.stop.file);
      expect(resultB.reached.position).toBeLessThanOrEqual(resultB.plan.stop.position);

      // (c) by GTID: up to and including the transaction before the DELETE's
      // (MariaDB: one GTID domain-server-sequence; MySQL: the executed set uuid:1-N).
      const before = gtidBefore(String(resultB.plan.hit.gtid));
      const c = await runCli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', `gtid:${before.target}`, '--into', 'incident_c', '--wait', '--json', '--config', setup.configPath]);
      expect(c.stderr).toBe('');
      expect(JSON.parse(c.stdout).reached.gtid).toBe(before.reached);

      expect(await checksums('incident_a')).toEqual(beforeDelete);
      expect(await checksums('incident_b')).toEqual(beforeDelete);
      expect(await checksums('incident_c')).toEqual(beforeDelete);
      expect(resultA.verification.find((v: { table: string }) => v.table === 'orders').rows).toBe(650);
      expect(await checksums(DB)).toEqual(liveAfter); // the live database is untouched
      const [objects] = await sql(`SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'incident_a'`);
      expect(Number(objects!.n)).toBe(2);
    });
  });

  test('table restore: a non-approver is refused at once; an approval swaps the restored table in atomically', async () => {
    await withWorker(setup.config, async () => {
      const handle = await startTableRestore(client, setup.config, { cluster: 'test', database: DB, tables: ['orders'], target: parseTarget(secondBeforeDelete), swap: true, requestedBy: 'jest' });
      await waitForPendingApproval(handle.workflowId);
      // Before the approval: the restored table stands next to the live ones, which are untouched.
      const waiting = await checksums(DB);
      const restoredName = Object.keys(waiting).find((t) => t.startsWith('orders_restored_'))!;
      expect(waiting[restoredName]).toBe(beforeDelete.orders);
      expect({ ...waiting, [restoredName]: undefined }).toEqual({ ...liveAfter, [restoredName]: undefined });

      const refused = await runCli(['approvals', 'approve', handle.workflowId, '--as', 'mallory', '--reason', 'looks fine', '--config', setup.configPath]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toBe('dbops: refused: mallory is not an approver for restore-swap on test (approvers: alice, bob)');
      const listed = await runCli(['approvals', 'list', '--json', '--config', setup.configPath]);
      expect(JSON.parse(listed.stdout).map((p: { workflowId: string }) => p.workflowId)).toContain(handle.workflowId);

      const approved = await runCli(['approvals', 'approve', handle.workflowId, '--as', 'alice', '--reason', 'INC-42: restore orders', '--config', setup.configPath]);
      expect(approved.stdout.trim()).toBe('approved by alice: INC-42: restore orders');
      const again = await runCli(['approvals', 'reject', handle.workflowId, '--as', 'bob', '--reason', 'too late', '--config', setup.configPath]);
      expect(again.stderr).toMatch(/refused: already approved by alice/);

      const result = (await handle.result()) as { swapped: boolean; decision: { decision: string; by: string; reason: string }; tables: Array<{ liveKeptAs: string }> };
      expect(result).toMatchObject({ swapped: true, decision: { decision: 'approved', by: 'alice', reason: 'INC-42: restore orders' } });
      const now = await checksums(DB);
      expect(now.orders).toBe(beforeDelete.orders);
      expect(now[result.tables[0]!.liveKeptAs]).toBe(liveAfter.orders); // the pre-swap live table is kept
      const triggers = await sql(`SELECT EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${DB}'`);
      expect(triggers.map((r) => r.t)).toEqual(['orders']); // the live name keeps its trigger
      const scratch = await sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbops\\_r\\_%'");
      expect(scratch).toEqual([]);
      // Put the live table back for the next tests.
      await sql(`RENAME TABLE ${DB}.orders TO ${DB}.orders_tmp, ${DB}.${result.tables[0]!.liveKeptAs} TO ${DB}.orders`);
      await sql(`DROP TABLE ${DB}.orders_tmp`);
      expect(await checksums(DB)).toEqual(liveAfter);
    });
  });

  test('a reject drops the restored tables; an expired approval aborts, escalates and notifies; live data untouched', async () => {
    await withWorker(setup.config, async () => {
      const rejected = await startTableRestore(client, setup.config, { cluster: 'test', database: DB, tables: ['orders', 'customers'], target: parseTarget(secondBeforeDelete), swap: true });
      await waitForPendingApproval(rejected.workflowId);
      await asPerson('bob', (bob) => decide(bob, rejected.workflowId, 'reject', 'bob', 'wrong point in time'));
      const r = (await rejected.result()) as { swapped: boolean; decision: { decision: string }; tables: Array<{ restoredAs: string | null }> };
      expect(r).toMatchObject({ swapped: false, decision: { decision: 'rejected' } });
      expect(r.tables.every((t) => t.restoredAs === null)).toBe(true);
      expect(await checksums(DB)).toEqual(liveAfter);
    });

    const short = makeTestConfig(`expiry-${product}`, { product, databases: [DB], approval: { timeout: '4s', escalateAfter: ['1s', '2s'] } });
    // The expiry config's repository is empty: point it at the same backups.
    short.config.repository.path = setup.config.repository.path;
    await withWorker(short.config, async () => {
      const expiring = await startTableRestore(client, short.config, { cluster: 'test', database: DB, tables: ['orders'], target: parseTarget(secondBeforeDelete), swap: true });
      const r = (await expiring.result()) as { swapped: boolean; decision: { decision: string; by: string | null } };
      expect(r).toMatchObject({ swapped: false, decision: { decision: 'expired', by: null } });
      const state = await approvalState(client, expiring.workflowId);
      expect(state?.escalations.map((e) => e.level)).toEqual([1, 2]);
      const history = await expiring.fetchHistory();
      const notified = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'notify').length;
      expect(notified).toBe(4); // requested, two escalations, expired
    });
    const leftovers = await sql(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${DB}' AND TABLE_NAME LIKE '%restored%'`);
    expect(leftovers).toEqual([]);
    expect(await checksums(DB)).toEqual(liveAfter);
  });

  test('restore plan prints what a restore would use and touches nothing', async () => {
    const before = await sql('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA ORDER BY 1');
    await withWorker(setup.config, async () => {
      const r = await runCli(['restore', 'plan', '--cluster', 'test', '--database', DB, '--before-matching', 'DELETE FROM .*orders', '--config', setup.configPath]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^restore of incident on test to binlog\.\d+:\d+\n/);
      expect(r.stdout).toMatch(/ full {8}\S+-full \(snapshot binlog\.\d+:\d+\)/);
      expect(r.stdout).toMatch(/ incremental \S+-incremental/);
      if (product === 'mariadb') expect(r.stdout).toMatch(/ statement {3}DELETE FROM incident\.orders WHERE total > 0 \(at \d{4}-/);
      else expect(r.stdout).toMatch(/ statement {3}DELETE FROM `incident`\.`orders` \(a row event; the binlog holds no statement text\) \(at \d{4}-/);
      // With the statement text in the binlog (MySQL: binlog_rows_query_log_events), that is what is found.
      const text = await runCli(['restore', 'plan', '--cluster', 'test', '--database', DB, '--before-matching', "CONCAT\\(IFNULL\\(note, ''\\), ' \\(checked\\)'\\)", '--json', '--config', setup.configPath]);
      expect(text.stderr).toBe('');
      expect(JSON.parse(text.stdout).hit).toMatchObject({ statement: expect.stringMatching(/^UPDATE .*orders SET note = CONCAT/), from: 'statement' });
    });
    expect(await sql('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA ORDER BY 1')).toEqual(before);
    expect(await checksums(DB)).toEqual(liveAfter);
  });

  test('bad input is refused with a clear message before anything is touched', async () => {
    const a = await checksums('incident_a');
    await withWorker(setup.config, async () => {
      const cli = (args: string[]) => runCli([...args, '--config', setup.configPath]);
      const future = await cli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', '2099-01-01T00:00:00Z', '--into', 'x_future', '--wait']);
      expect(future.stderr).toMatch(/the target 2099-01-01T00:00:00Z is in the future/);
      const early = await cli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', '2001-01-01T00:00:00Z', '--into', 'x_early', '--wait']);
      expect(early.stderr).toMatch(/no backups cover the end of 2001-01-01T00:00:00Z .*the restorable window is \d{4}-.* … \d{4}-/);
      const unknown = await cli(['restore', 'pitr', '--cluster', 'test', '--database', 'nosuchdb', '--to', 'latest', '--into', 'x_unknown', '--wait']);
      expect(unknown.stderr).toMatch(/no full backup of database nosuchdb in cluster test \(backed-up databases: incident\)/);
      const injection = await cli(['restore', 'pitr', '--cluster', 'test', '--database', 'x`; DROP DATABASE shop; --', '--to', 'latest', '--into', 'y', '--wait']);
      expect(injection.stderr.trim()).toMatch(/^dbops: --database: "x`; DROP DATABASE shop; --" is not an accepted name .*nothing was started$/);
      const exists = await cli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', 'latest', '--into', 'incident_a', '--wait']);
      expect(exists.stderr).toMatch(/database incident_a already exists on test; restore into a new name/);
      const table = await cli(['restore', 'table', '--cluster', 'test', '--database', DB, '--table', 'nosuchtable', '--to', 'latest', '--wait']);
      expect(table.stderr).toMatch(/table\(s\) nosuchtable not in full backup/);
      const badTime = await cli(['restore', 'plan', '--cluster', 'test', '--database', DB, '--to', 'yesterday']);
      expect(badTime.stderr.trim()).toBe('dbops: --to: "yesterday" is not an ISO-8601 UTC time; write it like 2026-11-22T14:03:06Z');
      for (const r of [future, early, unknown, injection, exists, table, badTime]) expect(r.code).toBe(1);
    });
    const dbs = await sql("SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'x\\_%' OR SCHEMA_NAME = 'y'");
    expect(dbs).toEqual([]);
    expect(await checksums('incident_a')).toEqual(a);
    expect(await checksums(DB)).toEqual(liveAfter);
  });
});
