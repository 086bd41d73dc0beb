/**
 * The slow-query killer against the real servers: an ordinary user's long statement is
 * stopped within one run and lands in the report (by digest: no literal in it); an ignored
 * user's and a dry run's are left running; replication sessions, dbops's own accounts and
 * the killer's own session are never touched, even by a policy that matches everything.
 * Time is fixed by the test, not the clock: a statement counts as busy after 1 s, and the
 * runs start only once the server reports the statements that old.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { Client } from '@temporalio/client';
import { startQueryKiller } from '../../src/client/queryKiller';
import { applySchedules } from '../../src/client/schedules';
import { localRepositoryRoot } from '../../src/repository';
import { KillReportSchema } from '../../src/domain/queryKiller';
import type { QueryKillerResult } from '../../src/workflows/queryKiller';
import { makeTestConfig, products, rootConnection, server, temporalClient, withWorker } from '../harness/context';

const PASSWORD = 'Killer-test-9';

describe.each(products())('the slow-query killer on %s', (product) => {
  let root: Connection;
  let client: Client;
  let closeClient: () => Promise<void>;
  const open: Connection[] = [];

  const connectAs = async (user: string): Promise<Connection> => {
    const s = server(product);
    const conn = await createConnection({ host: s.host, port: s.port, user, password: PASSWORD });
    open.push(conn);
    return conn;
  };
  /** Starts a long statement on a connection of its own; resolves with how it ended. */
  const sleepAs = async (user: string, seconds = 300): Promise<{ conn: Connection; ended: Promise<string> }> => {
    const conn = await connectAs(user);
    const ended = conn.query(`SELECT SLEEP(${seconds}) AS slept /* card 4111-1111 */`).then(
      ([rows]) => `returned ${String((rows as RowDataPacket[])[0]?.slept)}`,
      (error: { errno?: number; code?: string }) => `error ${error.errno ?? error.code}`,
    );
    return { conn, ended };
  };
  /** Until the server reports every given session busy for at least `seconds` (polled, bounded). */
  const busyFor = async (ids: number[], seconds: number): Promise<void> => {
    for (let i = 0; i < 300; i++) {
      const [rows] = await root.query<RowDataPacket[]>('SELECT ID AS id, TIME AS t FROM information_schema.PROCESSLIST');
      if (ids.every((id) => rows.some((r) => Number(r.id) === id && Number(r.t) >= seconds))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`sessions ${ids.join(', ')} never reached ${seconds} s`);
  };
  const running = async (id: number): Promise<boolean> => {
    const [rows] = await root.query<RowDataPacket[]>('SELECT INFO AS info FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
    return /SLEEP/i.test(String(rows[0]?.info ?? ''));
  };
  const setup = (name: string, queryKiller: Record<string, unknown>) =>
    makeTestConfig(`killer-${name}-${product}`, { product, mutate: (raw) => ((raw.clusters as Array<Record<string, unknown>>)[0]!.queryKiller = { busyTime: '1s', ...queryKiller }) });
  const run = async (config: ReturnType<typeof setup>['config'], dryRun = false): Promise<QueryKillerResult> =>
    withWorker(config, async () => (await startQueryKiller(client, config, { cluster: 'test', dryRun, requestedBy: 'jest' })).result());

  beforeAll(async () => {
    root = await rootConnection(product);
    for (const user of ['kt_app', 'kt_report', 'kt_repl']) {
      await root.query(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${PASSWORD}'`);
    }
    await root.query(`GRANT REPLICATION SLAVE ${product === 'mysql' ? ', REPLICATION CLIENT' : ', BINLOG MONITOR'} ON *.* TO 'kt_repl'@'%'`);
    ({ client, close: closeClient } = await temporalClient());
  });
  afterAll(async () => {
    for (const c of open) c.destroy();
    for (const user of ['kt_app', 'kt_report', 'kt_repl']) await root.query(`DROP USER IF EXISTS '${user}'@'%'`);
    await root.end();
    await closeClient();
  });

  test("an ordinary user's long statement is killed in one run and reported; an ignored user's goes on", async () => {
    const { config } = setup('kill', { ignore: [{ user: '^kt_report$' }] });
    const victim = await sleepAs('kt_app');
    const spared = await sleepAs('kt_report');
    await busyFor([victim.conn.threadId, spared.conn.threadId], 1);

    const result = await run(config);
    // KILL QUERY: the statement ends (SLEEP returns 1 when interrupted), the session stays.
    expect(await victim.ended).toMatch(/^(returned 1|error 1317)$/);
    await expect(victim.conn.query('SELECT 1 AS ok')).resolves.toBeDefined();
    expect(await running(spared.conn.threadId)).toBe(true);

    const mine = result.report.records.filter((r) => r.id === victim.conn.threadId);
    expect(mine).toEqual([expect.objectContaining({ outcome: 'killed', mode: 'query', user: 'kt_app', command: 'Query', digestText: 'select sleep(?) as slept' })]);
    expect(mine[0]!.timeSeconds).toBeGreaterThanOrEqual(1);
    expect(result.report.records.some((r) => r.id === spared.conn.threadId)).toBe(false);
    expect(result.report.spared.ignored).toBeGreaterThanOrEqual(1);
    // The report is in the repository, and nothing of the statement's text but its digest.
    expect(result.reportKey).toContain(path.join(localRepositoryRoot(config.repository), 'test', 'query-killer'));
    const stored = readFileSync(result.reportKey!, 'utf8');
    expect(KillReportSchema.parse(JSON.parse(stored)).records.map((r) => r.id)).toContain(victim.conn.threadId);
    expect(stored).not.toMatch(/4111|300/);

    await root.query(`KILL QUERY ${spared.conn.threadId}`);
    await spared.ended;
  });

  test('the schedule dbops schedules apply creates for it runs it: triggered, it kills the statement', async () => {
    const { config } = setup('scheduled', {});
    const id = `dbops/test/query-killer`;
    const victim = await sleepAs('kt_app');
    await busyFor([victim.conn.threadId], 1);
    try {
      const plan = await applySchedules(client, config);
      expect(plan.create.map((d) => d.id)).toContain(id);
      const description = await client.schedule.getHandle(id).describe();
      expect(description.spec.intervals).toEqual([expect.objectContaining({ every: 60_000 })]);
      expect(description.policies.overlap).toBe('SKIP');
      const result = await withWorker(config, async () => {
        await client.schedule.getHandle(id).trigger();
        let workflowId: string | null = null;
        for (let i = 0; i < 100 && !workflowId; i++) {
          const a = (await client.schedule.getHandle(id).describe()).info.recentActions[0]?.action;
          workflowId = a?.type === 'startWorkflow' ? a.workflow.workflowId : null;
          if (!workflowId) await new Promise((r) => setTimeout(r, 100));
        }
        expect(workflowId).toMatch(/^query-killer\/test\/scheduled-/);
        return (await client.workflow.getHandle(workflowId!).result()) as QueryKillerResult;
      });
      expect(await victim.ended).toMatch(/^(returned 1|error 1317)$/);
      expect(result.report.requestedBy).toBe(`schedule ${id}`);
      expect(result.report.records.filter((r) => r.id === victim.conn.threadId)).toEqual([expect.objectContaining({ outcome: 'killed' })]);
    } finally {
      await client.schedule.getHandle(id).delete().catch(() => undefined);
    }
  });

  test('mode connection closes the session, not only the statement', async () => {
    const { config } = setup('connection', { mode: 'connection' });
    const victim = await sleepAs('kt_app');
    await busyFor([victim.conn.threadId], 1);
    const result = await run(config);
    expect(result.report.records.filter((r) => r.id === victim.conn.threadId)).toEqual([expect.objectContaining({ outcome: 'killed', mode: 'connection' })]);
    // The server closed the session under the statement: the client loses its connection.
    expect(await victim.ended).toBe('error PROTOCOL_CONNECTION_LOST');
    await expect(victim.conn.query('SELECT 1')).rejects.toBeDefined();
    const [left] = await root.query<RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?', [victim.conn.threadId]);
    expect(left).toEqual([]);
  });

  test('a dry run records what it would kill and kills nothing', async () => {
    const { config } = setup('dry', {});
    const victim = await sleepAs('kt_app');
    await busyFor([victim.conn.threadId], 1);
    const result = await run(config, true);
    expect(result.report.dryRun).toBe(true);
    expect(result.report.records.filter((r) => r.id === victim.conn.threadId)).toEqual([expect.objectContaining({ outcome: 'would-kill' })]);
    expect(await running(victim.conn.threadId)).toBe(true);
    // queryKiller.dryRun in the config forces it whatever the run asks.
    const forced = await run(setup('dry-config', { dryRun: true }).config, false);
    expect(forced.report.dryRun).toBe(true);
    expect(await running(victim.conn.threadId)).toBe(true);
    await root.query(`KILL QUERY ${victim.conn.threadId}`);
    await victim.ended;
  });

  test("replication sessions, dbops's own accounts and the killer itself are never touched, even by a policy that matches everything", async () => {
    const s = server(product);
    // A replica's view of the server: a binlog dump session that never ends.
    const binlogTool = s.tools?.binlog ?? 'mariadb-binlog';
    const [logs] = await root.query<RowDataPacket[]>('SHOW BINARY LOGS');
    const last = String(logs[logs.length - 1]?.Log_name);
    const scratch = mkdtempSync(path.join(tmpdir(), `kt-${product}-`));
    const cnf = path.join(scratch, 'client.cnf');
    writeFileSync(cnf, `[client]\nuser=kt_repl\npassword=${PASSWORD}\nhost=${s.host}\nport=${s.port}\nprotocol=TCP\n`, { mode: 0o600 });
    const reader = spawn(binlogTool, [`--defaults-extra-file=${cnf}`, '--read-from-remote-server', '--stop-never', '--raw', `--result-file=${scratch}/`, last], { stdio: 'ignore' });
    const dbops = await createConnection({ host: s.host, port: s.port, user: s.restoreUser, password: readFileSync(s.restorePasswordFile, 'utf8').trim() });
    const dbopsSleep = dbops.query('SELECT SLEEP(300)').catch(() => undefined);
    try {
      let replId: number | null = null;
      for (let i = 0; i < 300 && replId === null; i++) {
        const [rows] = await root.query<RowDataPacket[]>("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = 'kt_repl' AND COMMAND LIKE 'Binlog Dump%' AND TIME >= 1");
        replId = rows[0] ? Number(rows[0].id) : null;
        if (replId === null) await new Promise((r) => setTimeout(r, 200));
      }
      expect(replId).not.toBeNull();
      await busyFor([dbops.threadId], 1);

      const { config } = setup('spare', { match: {}, busyTime: '0s' });
      const result = await run(config);
      const touched = new Set(result.report.records.map((r) => r.id));
      expect(touched.has(replId!)).toBe(false);
      expect(touched.has(dbops.threadId)).toBe(false);
      expect(result.report.spared).toMatchObject({ replication: expect.any(Number), dbops: expect.any(Number), self: 1 });
      expect(result.report.spared.replication).toBeGreaterThanOrEqual(1);
      expect(result.report.spared.dbops).toBeGreaterThanOrEqual(1);
      const [still] = await root.query<RowDataPacket[]>('SELECT ID AS id, COMMAND AS command FROM information_schema.PROCESSLIST WHERE ID IN (?, ?)', [replId, dbops.threadId]);
      expect(still.map((r) => Number(r.id)).sort()).toEqual([replId!, dbops.threadId].sort());
    } finally {
      reader.kill('SIGKILL');
      rmSync(scratch, { recursive: true, force: true });
      await root.query(`KILL QUERY ${dbops.threadId}`).catch(() => undefined);
      await dbopsSleep;
      await dbops.end();
    }
  });
});
