/**
 * Index changes on a live server, both products: what the table is (size, rows, columns,
 * indexes), what is in the way (long transactions, metadata-lock holders and waiters),
 * whether the server accepts the change online (asked on an empty copy of the table), the
 * verify queries' EXPLAIN plans, and the change itself
 * run on one session while a second watches the server and stops it when a limit is
 * crossed. Every statement is built from validated names (domain/schemaChange); the only
 * operator text that reaches the server is a verify query, and only under EXPLAIN.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterConfig, SchemaChangeConfig } from '../config/schema';
import { durationSeconds } from '../domain/duration';
import { Failure } from '../domain/failures';
import { quoteIdentifier } from '../domain/identifiers';
import type { Product } from '../domain/manifest';
import {
  changeStatement,
  onTable,
  overLimit,
  planAccesses,
  sameIndex,
  startHeld,
  tableAliases,
  usesIndex,
  verifyQueryProblem,
  type Blocker,
  type IndexChange,
  type IndexPart,
  type TableFacts,
  type VerifyPlan,
  type WatchLimits,
  type WatchSample,
} from '../domain/schemaChange';
import { connectionOptions, limitStatements, productOf } from './connection';
import { sampleLoad } from './archiveMove';

type Row = RowDataPacket;
const rows = async (conn: Connection, sql: string, params: unknown[] = []): Promise<Row[]> => (await conn.query<Row[]>(sql, params))[0];
const num = (v: unknown): number => (v === null || v === undefined || !Number.isFinite(Number(v)) ? 0 : Number(v));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** MySQL caches table statistics for a day by default: read them fresh. */
async function freshStatistics(conn: Connection, product: Product): Promise<void> {
  if (product === 'mysql') await conn.query('SET SESSION information_schema_stats_expiry = 0');
}

export async function readTableFacts(conn: Connection, database: string, table: string): Promise<TableFacts | null> {
  await freshStatistics(conn, await productOf(conn));
  const [t] = await rows(
    conn,
    'SELECT ENGINE AS engine, TABLE_ROWS AS r, DATA_LENGTH AS d, INDEX_LENGTH AS i FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, table],
  );
  if (!t) return null;
  const columns = (await rows(conn, 'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [database, table])).map((r) => String(r.c));
  const indexes: Record<string, IndexPart[]> = {};
  const stats = await rows(
    conn,
    'SELECT INDEX_NAME AS n, COLUMN_NAME AS c, SUB_PART AS s, NON_UNIQUE AS u, COLLATION AS o FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX',
    [database, table],
  );
  for (const r of stats) {
    const name = String(r.n);
    (indexes[name] ??= []).push({ column: String(r.c ?? ''), subPart: r.s === null || r.s === undefined ? null : Number(r.s), nonUnique: num(r.u) === 1, collation: r.o === null || r.o === undefined ? null : String(r.o) });
  }
  return { engine: t.engine === null || t.engine === undefined ? null : String(t.engine), rowsEstimate: num(t.r), dataBytes: num(t.d), indexBytes: num(t.i), columns, indexes };
}

/** The index as the server has it now, or null. */
export async function indexParts(conn: Connection, database: string, table: string, index: string): Promise<IndexPart[] | null> {
  const facts = await readTableFacts(conn, database, table);
  const name = Object.keys(facts?.indexes ?? {}).find((n) => n.toLowerCase() === index.toLowerCase());
  return name ? (facts?.indexes[name] ?? null) : null;
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * Free bytes on the filesystem of the server's datadir, when the worker can see it (the
 * server is on this host and the folder exists here); null otherwise.
 */
export async function serverFreeSpace(conn: Connection, cluster: ClusterConfig): Promise<{ freeBytes: number | null; freeOn: string | null }> {
  const [v] = await rows(conn, 'SELECT @@datadir AS datadir, @@tmpdir AS tmpdir');
  const innodbTmp = await rows(conn, 'SELECT @@innodb_tmpdir AS d').catch(() => [] as Row[]);
  const datadir = String(v?.datadir ?? '');
  // The sort files and the online log go to innodb_tmpdir (else tmpdir): often another filesystem.
  const tmpdir = String(innodbTmp[0]?.d ?? '') || String(v?.tmpdir ?? '').split(':')[0] || '';
  const local = cluster.socket !== undefined || LOCAL_HOSTS.has(cluster.host ?? '');
  const dirs = [datadir, tmpdir].filter((d) => d !== '');
  if (!local || datadir === '' || !dirs.every((d) => existsSync(d))) return { freeBytes: null, freeOn: datadir || null };
  let least: { freeBytes: number; freeOn: string } | null = null;
  for (const d of dirs) {
    const fs = await statfs(d);
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (!least || free < least.freeBytes) least = { freeBytes: free, freeOn: d };
  }
  return least ?? { freeBytes: null, freeOn: datadir };
}

/**
 * Sessions the change would wait for: transactions open longer than `longSeconds`, holders
 * of the table's metadata lock that long (MySQL's performance_schema; MariaDB's
 * METADATA_LOCK_INFO when its plugin is loaded), and sessions already queued for a
 * metadata lock in the database.
 */
export async function readBlockers(conn: Connection, database: string, table: string, longSeconds: number, except: number[]): Promise<Blocker[]> {
  const product = await productOf(conn);
  const out = new Map<number, Blocker>();
  const add = (r: Row, what: Blocker['what']) => {
    const id = num(r.id);
    if (id === 0 || except.includes(id) || out.has(id)) return;
    out.set(id, { id, user: String(r.user ?? ''), seconds: num(r.secs), what });
  };
  for (const r of await rows(
    conn,
    `SELECT p.ID AS id, p.USER AS user, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS secs FROM information_schema.INNODB_TRX t
     JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE t.trx_started <= NOW() - INTERVAL ? SECOND`,
    [longSeconds],
  ))
    add(r, 'long transaction');
  const holders =
    product === 'mysql'
      ? `SELECT t.PROCESSLIST_ID AS id, t.PROCESSLIST_USER AS user, t.PROCESSLIST_TIME AS secs FROM performance_schema.metadata_locks m
         JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID
         WHERE m.OBJECT_TYPE = 'TABLE' AND m.OBJECT_SCHEMA = ? AND m.OBJECT_NAME = ? AND m.LOCK_STATUS = 'GRANTED' AND t.PROCESSLIST_TIME >= ?`
      : `SELECT p.ID AS id, p.USER AS user, p.TIME AS secs FROM information_schema.METADATA_LOCK_INFO m
         JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID WHERE m.TABLE_SCHEMA = ? AND m.TABLE_NAME = ? AND p.TIME >= ?`;
  // MariaDB without the metadata_lock_info plugin: transactions and waiters still show.
  for (const r of await rows(conn, holders, [database, table, longSeconds]).catch(() => [] as Row[])) add(r, 'metadata lock holder');
  for (const r of await rows(conn, "SELECT ID AS id, USER AS user, TIME AS secs FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock' AND DB = ?", [database])) {
    add(r, 'waiting for metadata lock');
  }
  return [...out.values()];
}

/**
 * The server's answer to the same change, online, on an empty copy of the table made for
 * the question and dropped right after (a temporary table will not do: InnoDB builds no
 * index in place on one). null: accepted; else the server's error.
 */
export async function probeOnline(conn: Connection, database: string, change: IndexChange, runId: string): Promise<string | null> {
  // Named after the run: a retried attempt finds and replaces what a dead one left.
  const probe = `_dbops_probe_${createHash('sha256').update(runId).digest('hex').slice(0, 12)}`;
  const name = `${quoteIdentifier(database)}.${quoteIdentifier(probe)}`;
  await conn.query(`DROP TABLE IF EXISTS ${name}`);
  await conn.query(`CREATE TABLE ${name} LIKE ${quoteIdentifier(database)}.${quoteIdentifier(change.table)}`);
  try {
    await conn.query(changeStatement(database, onTable(change, probe)));
    return null;
  } catch (error) {
    const e = error as { errno?: number; sqlMessage?: string; message?: string };
    if (typeof e.errno !== 'number') throw error;
    return `${e.sqlMessage ?? e.message} (${e.errno})`;
  } finally {
    await conn.query(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
  }
}

/**
 * EXPLAIN FORMAT=JSON of each verify query, with the cluster's own (read-only) account, in
 * a read-only transaction, each statement limited to 30 s. Each query is checked again
 * here (the worker does not trust the run's input).
 */
export async function explainVerifyQueries(conn: Connection, database: string, table: string, index: string, queries: string[]): Promise<VerifyPlan[]> {
  const product = await productOf(conn);
  // What a string is must not depend on the server's sql_mode (no ANSI_QUOTES, no NO_BACKSLASH_ESCAPES).
  await conn.query("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'");
  await conn.query('SET NAMES utf8mb4');
  if (product === 'mariadb') await conn.query('SET SESSION max_statement_time = 30');
  else {
    await conn.query('SET SESSION max_execution_time = 30000');
    await conn.query('SET SESSION explain_json_format_version = 1').catch(() => undefined);
  }
  await conn.query(`USE ${quoteIdentifier(database)}`);
  await conn.query('START TRANSACTION READ ONLY');
  try {
    const plans: VerifyPlan[] = [];
    for (const [i, q] of queries.entries()) {
      const problem = verifyQueryProblem(q, database);
      if (problem) throw ApplicationFailure.nonRetryable(`verify query ${i + 1}: ${problem}`, Failure.InvalidInput);
      let doc: unknown;
      try {
        const [r] = await rows(conn, `EXPLAIN FORMAT=JSON ${q.trim().replace(/;$/, '')}`);
        doc = JSON.parse(String(Object.values(r ?? {})[0] ?? 'null'));
      } catch (error) {
        const e = error as { errno?: number; sqlMessage?: string };
        if (typeof e.errno !== 'number') throw error;
        throw ApplicationFailure.nonRetryable(`verify query ${i + 1} cannot be explained on ${database}: ${e.sqlMessage} (${e.errno})`, Failure.InvalidInput);
      }
      const accesses = planAccesses(doc);
      plans.push({ query: i, accesses, usesIndex: usesIndex(accesses, tableAliases(q, table), index) });
    }
    return plans;
  } finally {
    await conn.query('ROLLBACK').catch(() => undefined);
  }
}

// --- running the change ------------------------------------------------------------------

export interface BuildProgress {
  phase: 'waiting' | 'locking' | 'building' | 'stopping';
  /** Why the start is held (waiting), or the last limit crossed (building). */
  why: string | null;
  /** Percent done, where the server reports it (MariaDB's PROCESSLIST.PROGRESS, MySQL's stage events). */
  percent: number | null;
  stage: string | null;
  sample: WatchSample | null;
  lockTries: number;
  seconds: number;
}

export interface BuildOutcome {
  outcome: 'done' | 'already' | 'aborted';
  /** Why it was stopped (aborted). */
  why: string | null;
  seconds: number;
  lockTries: number;
  samples: number;
  peakThreadsRunning: number;
  peakLagSeconds: number | null;
  adopted: boolean;
}

export interface BuildRequest {
  cluster: ClusterConfig;
  /** The account that runs the change (opsAccount). */
  account: ClusterConfig;
  database: string;
  change: IndexChange;
  config: SchemaChangeConfig;
  replicas: Array<{ cluster: string; conn: () => Promise<Connection> }>;
  onProgress: (p: BuildProgress) => void;
  signal: AbortSignal;
  /** The activity's first attempt: an identical index found there was not built by this run. */
  firstAttempt: boolean;
}

export function watchLimits(c: SchemaChangeConfig): WatchLimits {
  return {
    pauseThreadsRunning: c.pauseAt.threadsRunning,
    abortThreadsRunning: c.abortAt.threadsRunning,
    pauseReplicaLagSeconds: durationSeconds(c.pauseAt.replicaLag),
    abortReplicaLagSeconds: durationSeconds(c.abortAt.replicaLag),
    abortMdlWaiters: c.abortAt.mdlWaiters,
    abortAfter: c.abortAfter,
  };
}

async function openSession(account: ClusterConfig): Promise<Connection> {
  const conn = await createConnection(connectionOptions(account));
  await limitStatements(conn, account);
  return conn;
}

/** The server's progress for a session running an ALTER, where it reports one. */
async function progressOf(conn: Connection, product: Product, id: number): Promise<{ percent: number | null; stage: string | null; state: string | null; running: boolean }> {
  if (product === 'mariadb') {
    const [r] = await rows(conn, 'SELECT PROGRESS AS p, STAGE AS s, MAX_STAGE AS m, STATE AS st, COMMAND AS c FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
    if (!r) return { percent: null, stage: null, state: null, running: false };
    const percent = Number(r.p);
    return { percent: Number.isFinite(percent) && num(r.m) > 0 ? percent : null, stage: num(r.m) > 0 ? `${num(r.s)}/${num(r.m)}` : null, state: r.st === null ? null : String(r.st), running: String(r.c) === 'Query' };
  }
  const [p] = await rows(conn, 'SELECT STATE AS st, COMMAND AS c FROM performance_schema.processlist WHERE ID = ?', [id]);
  if (!p) return { percent: null, stage: null, state: null, running: false };
  const [s] = await rows(
    conn,
    `SELECT s.EVENT_NAME AS e, s.WORK_COMPLETED AS w, s.WORK_ESTIMATED AS x FROM performance_schema.events_stages_current s
     JOIN performance_schema.threads t ON t.THREAD_ID = s.THREAD_ID WHERE t.PROCESSLIST_ID = ?`,
    [id],
  ).catch(() => [] as Row[]);
  const percent = s && num(s.x) > 0 ? Math.min(100, (num(s.w) / num(s.x)) * 100) : null;
  return { percent, stage: s ? String(s.e).replace(/^stage\/innodb\//, '') : null, state: p.st === null ? null : String(p.st), running: String(p.c) === 'Query' };
}

async function mdlWaiters(conn: Connection, database: string, except: number): Promise<number> {
  const [r] = await rows(conn, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock' AND DB = ? AND ID <> ?", [database, except]);
  return num(r?.n);
}

/** A session already running exactly this statement (an earlier attempt whose worker died), or null. */
async function runningStatement(conn: Connection, statement: string): Promise<number | null> {
  const [r] = await rows(conn, "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND INFO = ? AND ID <> CONNECTION_ID()", [statement]);
  return r ? num(r.id) : null;
}

/** Whether the change is already in place (add: the same index exists; drop: it is gone); a different index under the name is a conflict. */
async function alreadyApplied(conn: Connection, req: BuildRequest): Promise<boolean> {
  const parts = await indexParts(conn, req.database, req.change.table, req.change.index);
  if (req.change.kind === 'drop-index') return parts === null;
  if (parts === null) return false;
  if (sameIndex(req.change, parts)) return true;
  throw ApplicationFailure.nonRetryable(
    `${req.database}.${req.change.table} has an index ${req.change.index} that is not the one this change adds (${parts.map((p) => p.column).join(', ')}): nothing was changed`,
    Failure.InvalidInput,
  );
}

const LOCK_WAIT_TIMEOUT = 1205;
const INTERRUPTED = new Set([1317, 1927, 3024, 1969]);

/** A server's answer carries its error number; a lost connection or a client error does not (or a negative one). */
function serverErrno(error: { errno?: number } | null): number | null {
  return error && typeof error.errno === 'number' && error.errno > 0 ? error.errno : null;
}

/**
 * Runs the change on one session while a second samples the server every sampleEvery:
 * an index build starts at a quiet moment (under pauseAt, nothing in the way); a lock
 * wait longer than lockWait gives the table back to the queries queued behind the change
 * and tries again (lockTries); over abortAt for abortAfter samples in a row, past
 * maxDuration, or cancelled, the statement is killed and the server discards the
 * half-built index. A drop (a rollback) is metadata only: it neither waits for a quiet
 * moment nor is stopped by the load. Safe to retry: on a later attempt a change already
 * in place is `already`, and a run of the same statement left by a dead worker is watched
 * to its end instead of started twice; on the first attempt an identical index that is
 * already there was made by someone else, and this run refuses rather than own it.
 */
export async function runIndexChange(req: BuildRequest): Promise<BuildOutcome> {
  const limits = watchLimits(req.config);
  const statement = changeStatement(req.database, req.change);
  const building = req.change.kind === 'add-index';
  const everyMs = Math.round(durationSeconds(req.config.sampleEvery) * 1000);
  const maxMs = durationSeconds(req.config.maxDuration) * 1000;
  const started = Date.now();
  const watcher = await openSession(req.account);
  const outcome: BuildOutcome = { outcome: 'done', why: null, seconds: 0, lockTries: 0, samples: 0, peakThreadsRunning: 0, peakLagSeconds: null, adopted: false };
  const elapsed = () => Math.round((Date.now() - started) / 100) / 10;
  const sample = async (runner: number): Promise<WatchSample> => {
    const load = await sampleLoad(watcher, req.replicas);
    const blockers = await readBlockers(watcher, req.database, req.change.table, durationSeconds(req.config.longTransaction), [runner, watcher.threadId]);
    const s: WatchSample = { threadsRunning: load.threadsRunning, replicas: load.replicas, mdlWaiters: await mdlWaiters(watcher, req.database, runner), blockers: blockers.length };
    outcome.samples++;
    outcome.peakThreadsRunning = Math.max(outcome.peakThreadsRunning, s.threadsRunning);
    for (const r of s.replicas) if (r.lagSeconds !== null) outcome.peakLagSeconds = Math.max(outcome.peakLagSeconds ?? 0, r.lagSeconds);
    return s;
  };
  const cancelled = () => {
    if (req.signal.aborted) throw req.signal.reason instanceof Error ? req.signal.reason : new Error('cancelled');
  };
  /** After a kill: a statement past its commit point is done whatever the kill; otherwise it was stopped. */
  const afterKill = async (why: string): Promise<BuildOutcome> => {
    if (await alreadyApplied(watcher, req)) return { ...outcome, outcome: 'done', seconds: elapsed() };
    cancelled();
    return { ...outcome, outcome: 'aborted', why, seconds: elapsed() };
  };
  try {
    const product = await productOf(watcher);
    if (await alreadyApplied(watcher, req)) {
      if (req.firstAttempt && building) {
        throw ApplicationFailure.nonRetryable(
          `${req.database}.${req.change.table} already has this index ${req.change.index}, made by someone else since the preflight: this run changed nothing and will not roll back an index it did not build`,
          Failure.InvalidInput,
        );
      }
      return { ...outcome, outcome: 'already', seconds: elapsed() };
    }

    /** Watches one session running the statement until `ended` says so; null when it ended by itself, else why it was killed. */
    const watch = async (id: number, ended: () => Promise<boolean>): Promise<string | null> => {
      let over = 0;
      while (!(await ended())) {
        const kill = async (why: string) => {
          req.onProgress({ phase: 'stopping', why, percent: null, stage: null, sample: null, lockTries: outcome.lockTries, seconds: elapsed() });
          await watcher.query(`KILL QUERY ${Number(id)}`).catch(() => undefined);
          return why;
        };
        if (req.signal.aborted) return kill('cancelled by the operator');
        if (Date.now() - started > maxMs) return kill(`running longer than schemaChange.maxDuration (${req.config.maxDuration})`);
        const s = await sample(id);
        const p = await progressOf(watcher, product, id);
        const locking = /metadata lock/i.test(p.state ?? '');
        const why = building ? overLimit(s, limits) : null;
        over = why ? over + 1 : 0;
        req.onProgress({ phase: locking ? 'locking' : 'building', why, percent: p.percent, stage: p.stage, sample: s, lockTries: outcome.lockTries, seconds: elapsed() });
        if (why && over >= limits.abortAfter) return kill(`${why} for ${over} samples in a row`);
        await sleep(everyMs);
      }
      return null;
    };

    const leftOver = await runningStatement(watcher, statement);
    if (leftOver !== null) {
      outcome.adopted = true;
      const killed = await watch(leftOver, async () => (await runningStatement(watcher, statement)) !== leftOver);
      // The statement ended (or was stopped): the index says how.
      if (await alreadyApplied(watcher, req)) return { ...outcome, outcome: 'done', seconds: elapsed() };
      if (killed) return afterKill(killed);
      // It failed by itself: run it again below.
    }

    for (;;) {
      // A quiet moment first (an index build only).
      const waitUntil = Date.now() + durationSeconds(req.config.maxStartWait) * 1000;
      while (building) {
        cancelled();
        const s = await sample(0);
        const held = startHeld(s, limits);
        if (!held) break;
        req.onProgress({ phase: 'waiting', why: held, percent: null, stage: null, sample: s, lockTries: outcome.lockTries, seconds: elapsed() });
        if (Date.now() > waitUntil) {
          throw ApplicationFailure.nonRetryable(`no quiet moment within schemaChange.maxStartWait (${req.config.maxStartWait}): ${held}; nothing was changed`, Failure.ClusterBusy);
        }
        await sleep(everyMs);
      }
      cancelled();
      outcome.lockTries++;
      const runner = await openSession(req.account);
      let done = false;
      let failure: { errno?: number; sqlMessage?: string; message?: string } | null = null;
      try {
        await runner.query('SET SESSION lock_wait_timeout = ?', [Math.max(1, Math.round(durationSeconds(req.config.lockWait)))]);
        if (product === 'mariadb') await runner.query('SET SESSION max_statement_time = ?', [Math.round(durationSeconds(req.config.maxDuration))]);
        const running = runner.query(statement).then(
          () => {
            done = true;
          },
          (error: { errno?: number; sqlMessage?: string; message?: string }) => {
            failure = error;
            done = true;
          },
        );
        const killed = await watch(runner.threadId, async () => done);
        await running;
        if (killed) return await afterKill(killed);
      } finally {
        // A statement still running (the watcher failed): close the socket, do not queue a QUIT behind it; a retry finds it and watches it.
        if (done) await runner.end().catch(() => runner.destroy());
        else runner.destroy();
      }
      const f = failure as { errno?: number; sqlMessage?: string; message?: string } | null;
      if (!f) return { ...outcome, outcome: 'done', seconds: elapsed() };
      const errno = serverErrno(f);
      if (errno === null) {
        // Not the server's answer: the connection was lost, the statement may still run. Retried, the next attempt finds it.
        throw new Error(`lost the session running the change on ${req.cluster.name} (${f.message ?? 'no message'}); the next attempt looks for it on the server`);
      }
      if (errno === LOCK_WAIT_TIMEOUT) {
        if (outcome.lockTries >= req.config.lockTries) {
          throw ApplicationFailure.nonRetryable(
            `the table's metadata lock was not free within schemaChange.lockWait (${req.config.lockWait}) in ${outcome.lockTries} tries: a long transaction or a lock on ${req.database}.${req.change.table} is in the way; nothing was changed`,
            Failure.ClusterBusy,
          );
        }
        req.onProgress({ phase: 'waiting', why: `metadata lock not free within ${req.config.lockWait} (try ${outcome.lockTries})`, percent: null, stage: null, sample: null, lockTries: outcome.lockTries, seconds: elapsed() });
        await sleep(everyMs);
        continue;
      }
      if (errno === 1061 && (await alreadyApplied(watcher, req))) return { ...outcome, outcome: 'already', seconds: elapsed() };
      if (errno === 1062 && req.change.kind === 'add-index' && req.change.unique) {
        throw ApplicationFailure.nonRetryable(`${req.database}.${req.change.table} has rows with the same values in (${req.change.columns.map((c) => c.name).join(', ')}): a UNIQUE index cannot be built; nothing was changed`, Failure.InvalidInput);
      }
      if (errno === 1062) throw new Error(`a duplicate key while the server applied the writes made during the build (${f.sqlMessage}); the server discarded it, trying again`);
      if (INTERRUPTED.has(errno)) return afterKill(`the statement was stopped on the server (${f.sqlMessage ?? errno})`);
      throw ApplicationFailure.nonRetryable(`the change failed on ${req.cluster.name}: ${f.sqlMessage} (${errno}); the server discarded it`, Failure.InvalidInput);
    }
  } finally {
    await watcher.end().catch(() => watcher.destroy());
  }
}
