/**
 * The archive's SQL side: plan a job (refusing bad ones before any row moves), create the
 * destination, move key ranges exactly once, verify by checksums. Archiving writes, so it
 * connects with the cluster's write account (restoreUser), never the read-only backup one.
 */
import { Failure } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/common';
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import {
  archiveSql,
  sqlOf,
  checksumSelect,
  EMPTY_CHECKSUM,
  rowCrcExpression,
  sameChecksum,
  shapeMismatch,
  throttleDecision,
  walkProblem,
  type ArchiveCursor,
  type ArchiveJob,
  type ArchivePlan,
  type Destination,
  type LoadSample,
  type RowChecksum,
  type TableShape,
  type ThrottleDecision,
} from '../domain/archive';
import { durationSeconds } from '../domain/duration';
import { checkPredicate } from '../domain/sql/predicate';
import { quoteIdentifier } from '../domain/identifiers';

/** A batch whose locked, copied and deleted counts disagree (rolled back; taken again, then the run stops). */
export class CountMismatch extends Error {}

export function invalidJob(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, Failure.InvalidArchiveJob);
}

async function rows(conn: Connection, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const [r] = await conn.query<RowDataPacket[]>(sql, params);
  return r;
}

function toChecksum(r: RowDataPacket | undefined): RowChecksum {
  if (!r) return EMPTY_CHECKSUM;
  return { rows: Number(r.n ?? 0), sum: String(r.s ?? '0'), xor: String(r.x ?? '0') };
}

// Aria is crash-safe but has no rollback or row locks: a failed batch could leave rows in both tables.
const TRANSACTIONAL = new Set(['innodb']);

export interface TableFacts {
  shape: TableShape;
  /** Columns we copy: generated columns are recomputed by the destination. */
  copyColumns: string[];
  engine: string;
  deleteTriggers: string[];
  referencedBy: string[];
}

export async function tableFacts(conn: Connection, database: string, table: string): Promise<TableFacts | null> {
  const [t] = await rows(conn, 'SELECT ENGINE AS engine, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table]);
  if (!t) return null;
  const cols = await rows(
    conn,
    `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation,
            IFNULL(GENERATION_EXPRESSION, '') AS gen
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  const pk = await rows(
    conn,
    `SELECT COLUMN_NAME AS name FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [database, table],
  );
  const triggers = await rows(
    conn,
    `SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS
      WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND EVENT_MANIPULATION = 'DELETE'`,
    [database, table],
  );
  const refs = await rows(
    conn,
    `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CONSTRAINT_NAME AS name FROM information_schema.REFERENTIAL_CONSTRAINTS
      WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?`,
    [database, table],
  );
  // Generated columns have an expression (EXTRA alone misleads: MySQL 8 marks DEFAULT CURRENT_TIMESTAMP columns DEFAULT_GENERATED).
  const columns = cols.map((c) => ({
    name: String(c.name),
    type: String(c.type),
    nullable: c.nullable === 'YES',
    charset: c.charset === null || c.charset === undefined ? null : String(c.charset),
    collation: c.collation === null || c.collation === undefined ? null : String(c.collation),
    generated: String(c.gen ?? '') !== '',
  }));
  return {
    shape: { columns, primaryKey: pk.map((p) => String(p.name)) },
    copyColumns: columns.filter((c) => !c.generated).map((c) => c.name),
    engine: String(t.engine ?? t.type ?? ''),
    deleteTriggers: triggers.map((r) => String(r.name)),
    referencedBy: refs.map((r) => `${String(r.name)} on ${String(r.db)}.${String(r.tbl)}`),
  };
}

/** Fix NOW(), the isolation level, strictness and lock waits for a session of this run (and, across servers, the time zone). */
export async function prepareSession(conn: Connection, plan: Pick<ArchivePlan, 'sql'> & { timeZone?: string | null }): Promise<void> {
  for (const statement of plan.sql.session) await conn.query(statement);
  if (plan.timeZone) await conn.query('SET SESSION time_zone = ?', [plan.timeZone]);
}

/** The session's current UTC offset as '+HH:MM' (what SYSTEM means right now). */
async function fixedOffset(conn: Connection): Promise<string> {
  const [r] = await rows(conn, 'SELECT TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW()) AS m');
  const minutes = Number(r?.m ?? 0);
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** MySQL error numbers a retry cannot fix while moving rows, with what to do. */
const PERMANENT: Record<number, string> = {
  1062: 'a key to archive already exists in the destination',
  1093: 'the predicate reads the source table in a subquery, which DELETE does not allow',
  1264: 'a value is out of range for the destination column',
  1366: 'a value cannot be stored in the destination column (character set or type)',
  1406: 'a value is too long for the destination column',
  1153: 'a batch is larger than max_allowed_packet: lower batchSize',
  3140: 'a JSON value is invalid in the destination',
};

export function permanentMoveError(error: unknown, job: ArchiveJob): ApplicationFailure | null {
  const e = error as { errno?: number; sqlMessage?: string; message?: string };
  const why = e.errno === undefined ? undefined : PERMANENT[e.errno];
  if (!why) return null;
  return invalidJob(`archive of ${job.cluster}:${job.database}.${job.table} stopped: ${why} (${e.errno}: ${e.sqlMessage ?? e.message}); nothing of the failed batch was committed`);
}

/**
 * Keys to archive that the destination already holds (a duplicate in the making). Same
 * server: one join. Across servers: the destination's keys in the range, checked against
 * the source in chunks.
 */
async function clashingKeys(source: Connection, dest: Connection, sameServer: boolean, job: ArchiveJob, d: Destination, key: string, lo: string, hi: string): Promise<number> {
  const k = quoteIdentifier(key);
  const src = `${quoteIdentifier(job.database)}.${quoteIdentifier(job.table)}`;
  const dst = `${quoteIdentifier(d.database)}.${quoteIdentifier(d.table)}`;
  if (sameServer) {
    const [r] = await rows(source, `SELECT COUNT(*) AS n FROM ${src} WHERE ${k} >= ? AND ${k} <= ? AND (${job.where}) AND ${k} IN (SELECT ${k} FROM ${dst} WHERE ${k} >= ? AND ${k} <= ?)`, [lo, hi, lo, hi]);
    return Number(r?.n ?? 0);
  }
  let clash = 0;
  let after: unknown = null;
  for (;;) {
    const chunk = after === null ? await rows(dest, `SELECT ${k} AS k FROM ${dst} WHERE ${k} >= ? AND ${k} <= ? ORDER BY ${k} LIMIT 10000`, [lo, hi]) : await rows(dest, `SELECT ${k} AS k FROM ${dst} WHERE ${k} > ? AND ${k} <= ? ORDER BY ${k} LIMIT 10000`, [after, hi]);
    if (chunk.length === 0) return clash;
    const keys = chunk.map((r) => r.k as unknown);
    const [r] = await rows(source, `SELECT COUNT(*) AS n FROM ${src} WHERE ${k} IN (${keys.map(() => '?').join(', ')}) AND (${job.where})`, keys);
    clash += Number(r?.n ?? 0);
    after = keys[keys.length - 1];
  }
}

export interface PlanContext {
  source: Connection;
  dest: Connection;
  job: ArchiveJob;
  destination: Destination;
  asOf: number;
}

/** Everything a run needs to know, read-only. Throws InvalidArchiveJob for a job that must not run. */
export async function planArchiveWith(ctx: PlanContext): Promise<ArchivePlan & { warnings: string[] }> {
  const { source, dest, job, asOf } = ctx;
  const d = ctx.destination;
  const sameServer = d.cluster === job.cluster;
  const where = `${job.cluster}:${job.database}.${job.table}`;
  const facts = await tableFacts(source, job.database, job.table);
  if (!facts) throw invalidJob(`table: ${where} does not exist (or the write account cannot see it)`);
  if (!TRANSACTIONAL.has(facts.engine.toLowerCase())) {
    throw invalidJob(`table: ${where} uses ${facts.engine}, which has no transactions; exactly-once archiving needs InnoDB (ALTER TABLE … ENGINE=InnoDB)`);
  }
  const walk = walkProblem(facts.shape);
  if (walk) throw invalidJob(`table: ${where} ${walk}`);
  if (facts.referencedBy.length > 0) {
    throw invalidJob(`table: ${where} is referenced by foreign keys (${facts.referencedBy.join(', ')}); deleting its rows would cascade or fail: archive the child tables first`);
  }
  const key = facts.shape.primaryKey[0] as string;
  for (const c of facts.copyColumns) quoteIdentifier(c);
  const predicate = checkPredicate(job.where);
  if (!predicate.ok) throw invalidJob(`where: the predicate ${predicate.message}`);
  const known = new Set(facts.shape.columns.map((c) => c.name.toLowerCase()));
  const unknown = predicate.columns.filter((c) => !known.has(c.toLowerCase()));
  if (unknown.length > 0) {
    throw invalidJob(`where: the predicate does not parse on ${job.cluster}: ${unknown.join(', ')} ${unknown.length === 1 ? 'is not a column' : 'are not columns'} of ${job.database}.${job.table} (columns: ${facts.shape.columns.map((c) => c.name).join(', ')})`);
  }
  const sql = archiveSql({
    source: { database: job.database, table: job.table },
    dest: { database: d.database, table: d.table },
    columns: facts.copyColumns,
    key,
    where: job.where,
    batchSize: job.batchSize,
    asOf,
  });
  await prepareSession(source, { sql });

  // The server parses the predicate; EXPLAIN tells whether an index can serve it.
  let explain: RowDataPacket[];
  try {
    explain = await rows(source, `EXPLAIN SELECT ${quoteIdentifier(key)} FROM ${quoteIdentifier(job.database)}.${quoteIdentifier(job.table)} WHERE (${job.where})`);
  } catch (error) {
    const e = error as { errno?: number; sqlMessage?: string; message?: string };
    if (e.errno === 1064 || e.errno === 1054 || e.errno === 1305 || e.errno === 1582) {
      throw invalidJob(`where: the predicate does not parse on ${job.cluster}: ${e.sqlMessage ?? e.message}`);
    }
    throw error;
  }
  // DELETE has rules SELECT does not (no subquery on the same table): ask the server now, not in the first batch.
  try {
    await rows(source, `EXPLAIN ${sql.delete}`, ['0', '0']);
  } catch (error) {
    const e = error as { errno?: number; sqlMessage?: string; message?: string };
    throw invalidJob(`where: the predicate cannot be used in DELETE on ${job.cluster}: ${e.sqlMessage ?? e.message}`);
  }
  const row = explain[0];
  const impossible = /impossible where|no matching row/i.test(String(row?.Extra ?? ''));
  const possible = row?.possible_keys ? String(row.possible_keys) : null;
  if (!impossible && !possible) {
    throw invalidJob(
      `where: no index can serve the predicate on ${where} (EXPLAIN: full table scan); archive by an indexed column (the primary key ${key}, or add an index on the column you filter by)`,
    );
  }

  const [counted] = await rows(source, sql.count);
  const planned = toChecksum(counted);
  const keyMin = counted?.lo === null || counted?.lo === undefined ? null : String(counted.lo);
  const keyMax = counted?.hi === null || counted?.hi === undefined ? null : String(counted.hi);

  const destFacts = await tableFacts(dest, d.database, d.table);
  let createDest: string | null = null;
  let destBefore = EMPTY_CHECKSUM;
  const destName = `${d.cluster}:${d.database}.${d.table}`;
  if (destFacts) {
    const mismatch = shapeMismatch(facts.shape, destFacts.shape);
    if (mismatch) throw invalidJob(`to: ${destName} cannot take the rows of ${where}: ${mismatch}`);
    if (!TRANSACTIONAL.has(destFacts.engine.toLowerCase())) throw invalidJob(`to: ${destName} uses ${destFacts.engine}; the destination must be transactional (InnoDB)`);
    if (keyMin !== null) {
      const [b] = await rows(dest, sql.checksum, [keyMin, keyMax]);
      destBefore = toChecksum(b);
      if (destBefore.rows > 0) {
        const clash = await clashingKeys(source, dest, sameServer, job, d, key, keyMin, keyMax as string);
        if (clash > 0) {
          throw invalidJob(
            `to: ${destName} already holds ${clash} of the keys about to be archived (archived before and restored since?); move or delete those rows in one table first, nothing was touched`,
          );
        }
      }
    }
  } else {
    const [db] = await rows(dest, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [d.database]);
    if (!db) throw invalidJob(`to: database ${d.database} does not exist on ${d.cluster}; create it first (CREATE DATABASE ${quoteIdentifier(d.database)})`);
    createDest = await destinationDdl(source, dest, job, d);
  }

  const warnings: string[] = [];
  if (facts.deleteTriggers.length > 0) {
    warnings.push(`DELETE triggers on ${where} fire for every archived row (and see NOW() fixed at the plan time): ${facts.deleteTriggers.join(', ')}`);
  }
  const timeZone = sameServer ? null : await fixedOffset(source);
  return {
    job,
    dest: d,
    sameServer,
    asOf,
    key,
    columns: facts.copyColumns,
    keyMin,
    keyMax,
    planned,
    destBefore,
    destExists: destFacts !== null,
    createDest,
    index: impossible ? 'none needed (no row matches)' : `${String(row?.key ?? possible)} (possible: ${possible})`,
    estimatedBatches: Math.ceil(planned.rows / job.batchSize),
    timeZone,
    sql,
    warnings,
  };
}

export async function sampleLoad(source: Connection, replicas: Array<{ cluster: string; conn: () => Promise<Connection> }>): Promise<LoadSample> {
  const [t] = await rows(source, "SHOW GLOBAL STATUS LIKE 'Threads_running'");
  const sample: LoadSample = { threadsRunning: Number(t?.Value ?? 0), replicas: [] };
  for (const r of replicas) {
    const conn = await r.conn();
    try {
      const [status] = await rows(conn, 'SHOW REPLICA STATUS').catch(() => rows(conn, 'SHOW SLAVE STATUS'));
      const lag = status?.Seconds_Behind_Master ?? status?.Seconds_Behind_Source;
      sample.replicas.push({ cluster: r.cluster, lagSeconds: lag === null || lag === undefined ? null : Number(lag) });
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
  return sample;
}

export interface BatchOutcome {
  cursor: ArchiveCursor;
  moved: number;
  done: boolean;
}

/** The next key range: up to batchSize matching keys after the cursor, inside the plan's range. */
async function nextRange(source: Connection, plan: ArchivePlan, cursor: ArchiveCursor): Promise<{ lo: string; hi: string; n: number } | null> {
  const [r] = cursor.after === null ? await rows(source, plan.sql.nextRangeFromStart, [plan.keyMin, plan.keyMax]) : await rows(source, plan.sql.nextRange, [cursor.after, plan.keyMax]);
  if (!r || Number(r.n) === 0) return null;
  return { lo: String(r.lo), hi: String(r.hi), n: Number(r.n) };
}

/**
 * Same server: one transaction locks the next batch's rows (a locking read in REPEATABLE
 * READ also locks the gaps, so nothing can change or appear in the range), copies and
 * deletes them with the identical predicate. The three counts must agree or nothing is
 * committed. A retried batch after a commit finds nothing left: a no-op.
 */
export async function moveRangeSameServer(source: Connection, plan: ArchivePlan, cursor: ArchiveCursor): Promise<BatchOutcome> {
  await source.beginTransaction();
  try {
    const keys = cursor.after === null ? await rows(source, plan.sql.takeFromStart, [plan.keyMin, plan.keyMax]) : await rows(source, plan.sql.take, [cursor.after, plan.keyMax]);
    if (keys.length === 0) {
      await source.commit();
      return { cursor, moved: 0, done: true };
    }
    const lo = String(keys[0]?.k);
    const hi = String(keys[keys.length - 1]?.k);
    const n = keys.length;
    const [copied] = await source.query<ResultSetHeader>(plan.sql.copy, [lo, hi]);
    const [deleted] = await source.query<ResultSetHeader>(plan.sql.delete, [lo, hi]);
    if (copied.affectedRows !== n || deleted.affectedRows !== n) {
      throw new CountMismatch(`range ${lo}..${hi}: locked ${n}, copied ${copied.affectedRows}, deleted ${deleted.affectedRows}; rolled back`);
    }
    await source.commit();
    return { cursor: { after: hi }, moved: n, done: false };
  } catch (error) {
    await source.rollback().catch(() => undefined);
    throw error;
  }
}

/**
 * Across servers: insert the range's rows into the destination (keys an earlier attempt of
 * this run already copied are compared: identical ones are left, stale ones replaced; the
 * plan refused keys the destination held before), then in one source transaction lock
 * exactly those keys, compare checksums with the destination, and delete exactly those
 * keys. When the application changed a row in between, the copies of rows that no longer
 * qualify are removed from the destination and the batch is taken again.
 */
export async function moveRangeAcross(source: Connection, dest: Connection, plan: ArchivePlan, cursor: ArchiveCursor): Promise<BatchOutcome> {
  const range = await nextRange(source, plan, cursor);
  if (!range) return { cursor, moved: 0, done: true };
  const k = quoteIdentifier(plan.key);
  const crc = rowCrcExpression(plan.columns);
  const src = `${quoteIdentifier(plan.job.database)}.${quoteIdentifier(plan.job.table)}`;
  const target = `${quoteIdentifier(plan.dest.database)}.${quoteIdentifier(plan.dest.table)}`;
  const cols = plan.columns.map(quoteIdentifier).join(', ');
  const data = await rows(source, `SELECT ${cols}, ${crc} AS dbops_crc FROM ${src} WHERE ${k} >= ? AND ${k} <= ? AND (${plan.job.where}) ORDER BY ${k}`, [range.lo, range.hi]);
  if (data.length === 0) return { cursor: { after: range.hi }, moved: 0, done: false };
  const keyOf = (r: RowDataPacket) => String(r[plan.key]);
  const keys = data.map((r) => r[plan.key] as unknown);
  const inList = keys.map(() => '?').join(', ');
  const held = new Map((await rows(dest, `SELECT ${k} AS k, ${crc} AS c FROM ${target} WHERE ${k} IN (${inList})`, keys)).map((r) => [String(r.k), String(r.c)]));
  const stale = data.filter((r) => held.has(keyOf(r)) && held.get(keyOf(r)) !== String(r.dbops_crc));
  const toInsert = data.filter((r) => !held.has(keyOf(r)) || held.get(keyOf(r)) !== String(r.dbops_crc));
  const tuple = `(${plan.columns.map(() => '?').join(', ')})`;
  await dest.beginTransaction();
  try {
    if (stale.length > 0) await dest.query(`DELETE FROM ${target} WHERE ${k} IN (${stale.map(() => '?').join(', ')})`, stale.map((r) => r[plan.key] as unknown));
    if (toInsert.length > 0) {
      await dest.query(`INSERT INTO ${target} (${cols}) VALUES ${toInsert.map(() => tuple).join(', ')}`, toInsert.flatMap((r) => plan.columns.map((c) => r[c] as unknown)));
    }
    await dest.commit();
  } catch (error) {
    await dest.rollback().catch(() => undefined);
    throw error;
  }
  const [copied] = await rows(dest, `SELECT ${checksumSelect(plan.columns)} FROM ${target} WHERE ${k} IN (${inList})`, keys);
  await source.beginTransaction();
  try {
    const [heldNow] = await rows(source, `SELECT ${checksumSelect(plan.columns)} FROM ${src} WHERE ${k} IN (${inList}) AND (${plan.job.where}) FOR UPDATE`, keys);
    if (!sameChecksum(toChecksum(heldNow), toChecksum(copied))) {
      const still = new Set((await rows(source, `SELECT ${k} AS k FROM ${src} WHERE ${k} IN (${inList}) AND (${plan.job.where})`, keys)).map((r) => String(r.k)));
      await source.rollback();
      const gone = keys.filter((key) => !still.has(String(key)));
      if (gone.length > 0) await dest.query(`DELETE FROM ${target} WHERE ${k} IN (${gone.map(() => '?').join(', ')})`, gone);
      throw new Error(`range ${range.lo}..${range.hi}: rows changed between the copy and the delete (${gone.length} no longer qualify, their copies removed); the range is taken again`);
    }
    const [deleted] = await source.query<ResultSetHeader>(`DELETE FROM ${src} WHERE ${k} IN (${inList}) AND (${plan.job.where})`, keys);
    if (deleted.affectedRows !== data.length) throw new CountMismatch(`range ${range.lo}..${range.hi}: deleted ${deleted.affectedRows} of ${data.length}; rolled back`);
    await source.commit();
    return { cursor: { after: range.hi }, moved: data.length, done: false };
  } catch (error) {
    await source.rollback().catch(() => undefined);
    throw error;
  }
}

/** What the destination holds over the plan's key range, and what still matches in the source. */
export async function measureArchive(source: Connection, dest: Connection, plan: ArchivePlan): Promise<{ destAfter: RowChecksum; remaining: RowChecksum }> {
  if (plan.keyMin === null) return { destAfter: plan.destBefore, remaining: EMPTY_CHECKSUM };
  // Same server: both sides from one snapshot, so a batch committing in between cannot be missed or counted twice.
  if (source === dest) await source.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  const [after] = await rows(dest, plan.sql.checksum, [plan.keyMin, plan.keyMax]);
  const k = quoteIdentifier(plan.key);
  const [left] = await rows(
    source,
    `SELECT ${checksumSelect(plan.columns)} FROM ${quoteIdentifier(plan.job.database)}.${quoteIdentifier(plan.job.table)} WHERE ${k} >= ? AND ${k} <= ? AND (${plan.job.where})`,
    [plan.keyMin, plan.keyMax],
  );
  if (source === dest) await source.query('COMMIT');
  return { destAfter: toChecksum(after), remaining: toChecksum(left) };
}

export function decideThrottle(sample: LoadSample, job: ArchiveJob): ThrottleDecision {
  return throttleDecision(sample, job.throttle, durationSeconds(job.throttle.maxReplicaLag));
}

/**
 * A run's statements, derived again by the worker from the job and the table as it is now
 * (never taken from the workflow): refused when the table's key or columns changed since
 * the plan, because the plan's checksums and key range would no longer mean the same rows.
 */
export async function preparedRun(source: Connection, spec: { job: ArchiveJob; asOf: number; key: string; columns: string[]; keyMin: string | null; keyMax: string | null; timeZone: string | null }, dest: Destination): Promise<ArchivePlan> {
  const facts = await tableFacts(source, spec.job.database, spec.job.table);
  if (!facts) throw invalidJob(`table: ${spec.job.cluster}:${spec.job.database}.${spec.job.table} no longer exists`);
  const key = facts.shape.primaryKey[0];
  if (key !== spec.key || facts.copyColumns.join(',') !== spec.columns.join(',')) {
    throw invalidJob(
      `table: ${spec.job.database}.${spec.job.table} changed since the plan (key ${key ?? 'none'}, columns ${facts.copyColumns.join(', ')}; planned key ${spec.key}, columns ${spec.columns.join(', ')}); nothing more is moved: run the job again`,
    );
  }
  const plan = {
    job: spec.job,
    dest,
    sameServer: dest.cluster === spec.job.cluster,
    asOf: spec.asOf,
    key: spec.key,
    columns: spec.columns,
    keyMin: spec.keyMin,
    keyMax: spec.keyMax,
    planned: EMPTY_CHECKSUM,
    destBefore: EMPTY_CHECKSUM,
    destExists: true,
    createDest: null,
    index: '',
    estimatedBatches: 0,
    timeZone: spec.timeZone,
  };
  return { ...plan, sql: sqlOf(plan) };
}

/** The destination's DDL when it does not exist yet (same server: LIKE the source; another: the source's DDL without foreign keys). */
export async function destinationDdl(source: Connection, dest: Connection, job: ArchiveJob, d: Destination): Promise<string | null> {
  if (await tableFacts(dest, d.database, d.table)) return null;
  const target = `${quoteIdentifier(d.database)}.${quoteIdentifier(d.table)}`;
  if (d.cluster === job.cluster) return `CREATE TABLE IF NOT EXISTS ${target} LIKE ${quoteIdentifier(job.database)}.${quoteIdentifier(job.table)}`;
  const [show] = await rows(source, `SHOW CREATE TABLE ${quoteIdentifier(job.database)}.${quoteIdentifier(job.table)}`);
  const ddl = String(show?.['Create Table'] ?? '');
  // Foreign keys point at tables the archive server does not have: history keeps the rows, not the constraints.
  return ddl
    .replace(/^CREATE TABLE `[^`]+`/, `CREATE TABLE IF NOT EXISTS ${target}`)
    .replace(/\sAUTO_INCREMENT=\d+/, '')
    .replace(/,\n\s*CONSTRAINT `[^`]+` FOREIGN KEY[^\n]*(?=\n)/g, '');
}
