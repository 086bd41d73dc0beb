/**
 * Moving rows: one key range per batch, exactly once (copy and delete in one transaction
 * on one server; upsert, compare checksums, delete across servers), the load samples the
 * throttle decides on, and the final measurement the verification compares.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import {
  checksumSelect,
  EMPTY_CHECKSUM,
  rowCrcExpression,
  sameChecksum,
  throttleDecision,
  type ArchiveCursor,
  type ArchiveJob,
  type ArchivePlan,
  type LoadSample,
  type RowChecksum,
  type ThrottleDecision,
} from '../domain/archive';
import { durationSeconds } from '../domain/duration';
import { quoteIdentifier } from '../domain/identifiers';
import { invalidJob, rows, toChecksum } from './archivePlan';

/** A batch whose locked, copied and deleted counts disagree (rolled back; taken again, then the run stops). */
export class CountMismatch extends Error {}

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
