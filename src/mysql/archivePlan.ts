/**
 * Planning an archive run, read-only: the table's facts (key, columns, engine, triggers,
 * foreign keys), refusing a job that must not run before any row moves, the destination's
 * DDL, and a run's statements derived again from the job by the worker. Archiving writes,
 * so it connects with the cluster's write account (restoreUser), never the backup one.
 */
import { Failure } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/common';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  archiveSql,
  sqlOf,
  EMPTY_CHECKSUM,
  shapeMismatch,
  walkProblem,
  type ArchiveJob,
  type ArchivePlan,
  type Destination,
  type RowChecksum,
  type TableShape,
} from '../domain/archive';
import { checkPredicate } from '../domain/sql/predicate';
import { quoteIdentifier } from '../domain/identifiers';
import { explainRows } from './connection';

export function invalidJob(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, Failure.InvalidArchiveJob);
}

export async function rows(conn: Connection, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  const [r] = await conn.query<RowDataPacket[]>(sql, params);
  return r;
}

export function toChecksum(r: RowDataPacket | undefined): RowChecksum {
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
    explain = await explainRows(source, `SELECT ${quoteIdentifier(key)} FROM ${quoteIdentifier(job.database)}.${quoteIdentifier(job.table)} WHERE (${job.where})`);
  } catch (error) {
    const e = error as { errno?: number; sqlMessage?: string; message?: string };
    if (e.errno === 1064 || e.errno === 1054 || e.errno === 1305 || e.errno === 1582) {
      throw invalidJob(`where: the predicate does not parse on ${job.cluster}: ${e.sqlMessage ?? e.message}`);
    }
    throw error;
  }
  // DELETE has rules SELECT does not (no subquery on the same table): ask the server now, not in the first batch.
  try {
    await explainRows(source, sql.delete, ['0', '0']);
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
