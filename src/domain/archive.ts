/**
 * Batched history archiving: move the rows a predicate selects
 * from a live table into a history table, in primary-key ranges, exactly once. Pure: the
 * job's validation, the SQL every batch runs, the throttle decision and the verification
 * arithmetic live here so that workflows can import them and unit tests can pin them.
 *
 * Exactly once, same server: one transaction per key range locks the range's matching
 * rows, copies them (`INSERT … SELECT`) and deletes them (`DELETE`) with the identical
 * predicate; the copy and the delete must agree on the row count or the range is rolled
 * back. A retried range finds nothing left to move, so it is a no-op.
 *
 * Exactly once, across servers: copy the range's rows to the destination with an
 * idempotent upsert, then, in one source transaction, lock exactly those keys, check that
 * their checksum equals the destination's, and delete exactly those keys.
 *
 * Verification does not trust any batch's report (a batch may commit and its worker die
 * before saying so): it compares checksums. Row checksums are additive (count, sum and
 * xor of CRC32 over the row's columns), so "what the destination gained over the key
 * range" must equal "what the source held at plan time", and nothing matching may remain.
 */
import { z } from 'zod';
import { durationSchema } from './duration';
import { checkPredicate } from './sql/predicate';
import { CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE, quoteIdentifier, SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE } from './identifiers';

const identifier = z.string().regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE);
const clusterName = z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE);
const duration = durationSchema('a duration such as 500ms, 5s or 1m');

/** Between batches (pt-online-schema-change's defaults: pause at 25 running threads, abort at 50). */
export const ThrottleSchema = z
  .strictObject({
    maxThreadsRunning: z.number().int().min(1).default(25),
    abortThreadsRunning: z.number().int().min(1).default(50),
    /** Replicas (cluster names from the config) whose lag is checked between batches. */
    replicas: z.array(clusterName).default([]),
    maxReplicaLag: duration.default('10s'),
    /** Pause between batches even when the server is idle (default none). */
    sleep: duration.default('0s'),
    /** While paused by load, check again after this long. */
    recheckAfter: duration.default('5s'),
  })
  .refine((t) => t.abortThreadsRunning > t.maxThreadsRunning, {
    message: 'abortThreadsRunning must be above maxThreadsRunning (pause first, abort only when it gets worse)',
    path: ['abortThreadsRunning'],
  });
export type Throttle = z.infer<typeof ThrottleSchema>;
export const DEFAULT_THROTTLE: Throttle = ThrottleSchema.parse({});

/** `orders_history` (same database), `archive.orders_history`, or `other-cluster:archive.orders_history`. */
export const DESTINATION_PATTERN = /^(?:([a-z0-9][a-z0-9_-]{0,62}):)?(?:([A-Za-z0-9_$]{1,64})\.)?([A-Za-z0-9_$]{1,64})$/;

export interface Destination {
  cluster: string;
  database: string;
  table: string;
}

export function parseDestination(text: string, source: { cluster: string; database: string }): Destination | null {
  const m = DESTINATION_PATTERN.exec(text.trim());
  if (!m?.[3]) return null;
  return { cluster: m[1] ?? source.cluster, database: m[2] ?? source.database, table: m[3] };
}

/**
 * The predicate is SQL the operator writes (`created_at < NOW() - INTERVAL 90 DAY`), placed
 * inside parentheses in every statement: only a predicate on the table's own columns with
 * deterministic functions is accepted (see sql/predicate). Whether the columns exist is
 * checked against the table when the run is planned.
 */
export function predicateProblem(where: string): string | null {
  const checked = checkPredicate(where);
  return checked.ok ? null : checked.message;
}

export const ArchiveJobSchema = z
  .strictObject({
    /** Config jobs have a name (schedules refer to it); ad hoc jobs get one from the table. */
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'lower-case letters, digits, ".", "-" and "_"').optional(),
    cluster: clusterName,
    database: identifier,
    table: identifier,
    where: z.string().superRefine((w, ctx) => {
      const problem = predicateProblem(w);
      if (problem) ctx.addIssue({ code: 'custom', message: `the predicate ${problem}` });
    }),
    /** Destination table; see DESTINATION_PATTERN. */
    to: z.string().regex(DESTINATION_PATTERN, 'a table, database.table or cluster:database.table'),
    /** 1,000 rows per batch: short transactions, short locks. */
    batchSize: z.number().int().min(1).max(100_000).default(1000),
    throttle: ThrottleSchema.default(DEFAULT_THROTTLE),
    /** Ask a person before the first row is deleted (approvers: the cluster's "archive-delete"). */
    approval: z.boolean().default(true),
    /** Start a fresh workflow run (same id) after this many batches, to keep histories short. */
    continueAsNewEvery: z.number().int().min(1).default(500),
  })
  .superRefine((job, ctx) => {
    const dest = parseDestination(job.to, job);
    if (dest && dest.cluster === job.cluster && dest.database === job.database && dest.table === job.table) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'the destination is the source table itself; archive into a history table' });
    }
  });
export type ArchiveJob = z.infer<typeof ArchiveJobSchema>;
export type ArchiveJobInput = z.input<typeof ArchiveJobSchema>;

export function archiveJobName(job: Pick<ArchiveJob, 'name' | 'database' | 'table'>): string {
  return job.name ?? `${job.database}.${job.table}`.toLowerCase().replace(/[^a-z0-9_.-]/g, '_');
}

/** One workflow id per job: a second run of the same job while one runs is refused by Temporal. */
export function archiveWorkflowId(job: Pick<ArchiveJob, 'cluster' | 'name' | 'database' | 'table'>): string {
  return `archive/${job.cluster}/${archiveJobName(job)}`;
}

/** Additive row checksum: count, sum and xor of per-row CRC32s (the sum catches duplicates, the xor reorderings of equal sums). */
export interface RowChecksum {
  rows: number;
  sum: string;
  xor: string;
}

export const EMPTY_CHECKSUM: RowChecksum = { rows: 0, sum: '0', xor: '0' };

export function subtractChecksum(after: RowChecksum, before: RowChecksum): RowChecksum {
  return {
    rows: after.rows - before.rows,
    sum: (BigInt(after.sum) - BigInt(before.sum)).toString(),
    xor: (BigInt(after.xor) ^ BigInt(before.xor)).toString(),
  };
}

export function sameChecksum(a: RowChecksum, b: RowChecksum): boolean {
  return a.rows === b.rows && BigInt(a.sum) === BigInt(b.sum) && BigInt(a.xor) === BigInt(b.xor);
}

export interface TableShape {
  columns: Array<{ name: string; type: string; nullable: boolean; charset?: string | null; collation?: string | null; generated?: boolean }>;
  primaryKey: string[];
}

/** Why a destination table cannot take the source's rows (null: it can). */
export function shapeMismatch(source: TableShape, dest: TableShape): string | null {
  const problems: string[] = [];
  const destCols = new Map(dest.columns.map((c) => [c.name, c]));
  for (const c of source.columns) {
    const d = destCols.get(c.name);
    if (!d) problems.push(`column ${c.name} is missing`);
    else if (d.type.toLowerCase() !== c.type.toLowerCase()) problems.push(`column ${c.name} is ${d.type}, the source has ${c.type}`);
    else if (!d.nullable && c.nullable) problems.push(`column ${c.name} is NOT NULL, the source allows NULL`);
    else if ((d.charset ?? null) !== (c.charset ?? null) || (d.collation ?? null) !== (c.collation ?? null)) {
      problems.push(`column ${c.name} is ${d.charset ?? 'binary'}/${d.collation ?? '-'}, the source has ${c.charset ?? 'binary'}/${c.collation ?? '-'} (text would be converted)`);
    } else if ((d.generated ?? false) !== (c.generated ?? false)) problems.push(`column ${c.name} is ${d.generated ? '' : 'not '}generated in the destination, ${c.generated ? '' : 'not '}in the source`);
  }
  const sourceNames = new Set(source.columns.map((c) => c.name));
  for (const d of dest.columns) if (!sourceNames.has(d.name)) problems.push(`column ${d.name} is not in the source`);
  if (dest.primaryKey.join(',') !== source.primaryKey.join(',')) {
    problems.push(`primary key is (${dest.primaryKey.join(', ') || 'none'}), the source's is (${source.primaryKey.join(', ')})`);
  }
  return problems.length === 0 ? null : problems.join('; ');
}

/** Why the source table cannot be walked by key ranges (null: it can). */
export function walkProblem(shape: TableShape): string | null {
  if (shape.primaryKey.length === 0) return 'has no primary key: archiving walks the primary key in ranges (never OFFSET); add one first';
  if (shape.primaryKey.length > 1) return `has a composite primary key (${shape.primaryKey.join(', ')}); only single-column keys are walked today`;
  const key = shape.columns.find((c) => c.name === shape.primaryKey[0]);
  if (key && /binary|blob|bit|json|geometry|point|polygon/i.test(key.type)) {
    return `has a ${key.type} primary key; keys are walked as text, so only integer, decimal, date/time and character keys are supported`;
  }
  return null;
}

/** Every statement an archive run executes, with `?` for the key bounds. `--dry-run` prints these. */
export interface ArchiveSql {
  /** Fixes NOW() for the whole run (the predicate means the same thing in every batch). */
  session: string[];
  count: string;
  /** Same server: lock the next batch's keys (up to batchSize matching rows after the cursor) and read them. */
  take: string;
  takeFromStart: string;
  /** Across servers: the next batch's key range, without locking. */
  nextRange: string;
  nextRangeFromStart: string;
  copy: string;
  delete: string;
  checksum: string;
  /** Across servers: read the range's rows, insert the missing ones, delete exactly those keys. */
  read: string;
  upsert: string;
  deleteKeys: string;
}

export function rowCrcExpression(columns: readonly string[]): string {
  const q = columns.map(quoteIdentifier);
  // CONCAT_WS skips NULLs; the ISNULL flags keep (NULL, 'a') and ('a', NULL) apart.
  return `CRC32(CONCAT_WS('#', ${q.join(', ')}, CONCAT(${q.map((c) => `ISNULL(${c})`).join(', ')})))`;
}

export function checksumSelect(columns: readonly string[]): string {
  const crc = rowCrcExpression(columns);
  return `COUNT(*) AS n, COALESCE(SUM(${crc}), 0) AS s, COALESCE(BIT_XOR(${crc}), 0) AS x`;
}

export function archiveSql(input: {
  source: { database: string; table: string };
  dest: { database: string; table: string };
  columns: string[];
  key: string;
  where: string;
  batchSize: number;
  asOf: number;
}): ArchiveSql {
  const src = `${quoteIdentifier(input.source.database)}.${quoteIdentifier(input.source.table)}`;
  const dst = `${quoteIdentifier(input.dest.database)}.${quoteIdentifier(input.dest.table)}`;
  const k = quoteIdentifier(input.key);
  const cols = input.columns.map(quoteIdentifier).join(', ');
  const pred = `(${input.where.trim()})`;
  const range = `${k} >= ? AND ${k} <= ? AND ${pred}`;
  const next = (op: '>' | '>=') =>
    `SELECT MIN(k) AS lo, MAX(k) AS hi, COUNT(*) AS n FROM (SELECT ${k} AS k FROM ${src} WHERE ${k} ${op} ? AND ${k} <= ? AND ${pred} ORDER BY ${k} LIMIT ${input.batchSize}) AS batch`;
  const take = (op: '>' | '>=') => `SELECT ${k} AS k FROM ${src} WHERE ${k} ${op} ? AND ${k} <= ? AND ${pred} ORDER BY ${k} LIMIT ${input.batchSize} FOR UPDATE`;
  return {
    session: [
      `SET SESSION timestamp = ${input.asOf}`,
      'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ',
      // A value the destination cannot hold fails the batch instead of being changed.
      "SET SESSION sql_mode = IF(@@SESSION.sql_mode = '', 'STRICT_ALL_TABLES', CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES'))",
      // Wait briefly for the application's locks, then step back and retry (never queue behind a DDL).
      'SET SESSION innodb_lock_wait_timeout = 5, SESSION lock_wait_timeout = 30',
    ],
    count: `SELECT MIN(${k}) AS lo, MAX(${k}) AS hi, ${checksumSelect(input.columns)} FROM ${src} WHERE ${pred}`,
    take: take('>'),
    takeFromStart: take('>='),
    nextRange: next('>'),
    nextRangeFromStart: next('>='),
    copy: `INSERT INTO ${dst} (${cols}) SELECT ${cols} FROM ${src} WHERE ${range}`,
    delete: `DELETE FROM ${src} WHERE ${range}`,
    checksum: `SELECT ${checksumSelect(input.columns)} FROM ${dst} WHERE ${k} >= ? AND ${k} <= ?`,
    read: `SELECT ${cols} FROM ${src} WHERE ${range} ORDER BY ${k}`,
    upsert: `INSERT INTO ${dst} (${cols}) VALUES … -- keys this run copied before are compared, not overwritten`,
    deleteKeys: `DELETE FROM ${src} WHERE ${k} IN (…) AND ${pred}`,
  };
}

export interface LoadSample {
  threadsRunning: number;
  /** Seconds behind the primary per replica; null when replication is stopped or broken. */
  replicas: Array<{ cluster: string; lagSeconds: number | null }>;
}

export type ThrottleDecision = { action: 'go' } | { action: 'pause'; reason: string } | { action: 'abort'; reason: string };

export function throttleDecision(sample: LoadSample, throttle: Throttle, maxLagSeconds: number): ThrottleDecision {
  if (sample.threadsRunning >= throttle.abortThreadsRunning) {
    return { action: 'abort', reason: `Threads_running ${sample.threadsRunning} reached the abort threshold ${throttle.abortThreadsRunning}` };
  }
  if (sample.threadsRunning > throttle.maxThreadsRunning) {
    return { action: 'pause', reason: `Threads_running ${sample.threadsRunning} is above ${throttle.maxThreadsRunning}` };
  }
  for (const r of sample.replicas) {
    if (r.lagSeconds === null) return { action: 'pause', reason: `replica ${r.cluster} is not replicating (lag unknown)` };
    if (r.lagSeconds > maxLagSeconds) return { action: 'pause', reason: `replica ${r.cluster} is ${r.lagSeconds}s behind (limit ${maxLagSeconds}s)` };
  }
  return { action: 'go' };
}

/** Where the walk stands: the next range starts after `after` (or at the plan's first key). */
export interface ArchiveCursor {
  after: string | null;
}

export interface ArchivePlan {
  job: ArchiveJob;
  dest: Destination;
  sameServer: boolean;
  /** Unix seconds: NOW() in every statement of the run. */
  asOf: number;
  key: string;
  columns: string[];
  /** The key range holding every row the predicate selects at plan time (null: nothing to do). */
  keyMin: string | null;
  keyMax: string | null;
  /** What the source held in that range at plan time, and what the destination held. */
  planned: RowChecksum;
  destBefore: RowChecksum;
  destExists: boolean;
  createDest: string | null;
  index: string;
  estimatedBatches: number;
  /** Across servers: both sessions use this fixed UTC offset, so TIMESTAMP values travel unchanged. */
  timeZone: string | null;
  sql: ArchiveSql;
}

/**
 * What an archive activity is handed: the job and the plan-time facts it needs, never SQL.
 * The worker validates the job again and derives every statement from it and from the
 * table as it is now (and refuses when the table's key or columns changed since the plan).
 */
export interface ArchiveRunSpec {
  job: ArchiveJobInput;
  asOf: number;
  key: string;
  columns: string[];
  keyMin: string | null;
  keyMax: string | null;
  timeZone: string | null;
}

export function runSpecOf(plan: Pick<ArchivePlan, 'job' | 'asOf' | 'key' | 'columns' | 'keyMin' | 'keyMax' | 'timeZone'>): ArchiveRunSpec {
  return { job: plan.job, asOf: plan.asOf, key: plan.key, columns: plan.columns, keyMin: plan.keyMin, keyMax: plan.keyMax, timeZone: plan.timeZone };
}

/** The statements of a run, from its job and facts (the same function the worker uses). */
export function sqlOf(facts: Pick<ArchivePlan, 'job' | 'dest' | 'columns' | 'key' | 'asOf'>): ArchiveSql {
  return archiveSql({
    source: { database: facts.job.database, table: facts.job.table },
    dest: { database: facts.dest.database, table: facts.dest.table },
    columns: facts.columns,
    key: facts.key,
    where: facts.job.where,
    batchSize: facts.job.batchSize,
    asOf: facts.asOf,
  });
}

export interface ArchiveVerification {
  ok: boolean;
  /** Every row planned is in exactly one place: moved to the destination, or still in the source. */
  conserved: boolean;
  complete: boolean;
  moved: RowChecksum;
  remaining: RowChecksum;
  problems: string[];
}

export function addChecksum(a: RowChecksum, b: RowChecksum): RowChecksum {
  return { rows: a.rows + b.rows, sum: (BigInt(a.sum) + BigInt(b.sum)).toString(), xor: (BigInt(a.xor) ^ BigInt(b.xor)).toString() };
}

/**
 * Conservation: what the destination gained over the key range plus what still matches in
 * the source range must equal what the source held at plan time, row for row (checksums).
 * That holds after a complete run, a cancelled one and an aborted one alike; a complete run
 * must also leave nothing behind.
 */
export function verifyArchive(plan: Pick<ArchivePlan, 'planned' | 'destBefore'>, destAfter: RowChecksum, remaining: RowChecksum, expectComplete: boolean): ArchiveVerification {
  const moved = subtractChecksum(destAfter, plan.destBefore);
  const problems: string[] = [];
  const total = addChecksum(moved, remaining);
  if (total.rows !== plan.planned.rows) {
    problems.push(`planned ${plan.planned.rows} row(s); the destination gained ${moved.rows} and ${remaining.rows} remain in the source (${total.rows - plan.planned.rows > 0 ? 'more' : 'fewer'} than planned: rows changed during the run, or were duplicated or lost)`);
  } else if (!sameChecksum(total, plan.planned)) {
    problems.push('the rows moved and the rows left do not add up to the rows planned (checksum mismatch)');
  }
  const conserved = problems.length === 0;
  const complete = remaining.rows === 0;
  if (expectComplete && !complete) problems.push(`${remaining.rows} row(s) matching the predicate are still in the source range`);
  return { ok: problems.length === 0, conserved, complete, moved, remaining, problems };
}

/** Sum of batch reports, for progress only (the verification recomputes from the tables). */
export interface ArchiveProgress {
  phase: 'plan' | 'destination' | 'approval' | 'moving' | 'paused' | 'verify' | 'done' | 'cancelled' | 'failed';
  planned: number;
  moved: number;
  batches: number;
  cursor: ArchiveCursor;
  throttled: string | null;
  pausedBy: string | null;
  runs: number;
  startedAt: string;
  updatedAt: string;
}

export function rowsPerSecond(rows: number, startedAt: string, now: string): number {
  const seconds = (Date.parse(now) - Date.parse(startedAt)) / 1000;
  return seconds > 0 ? Math.round(rows / seconds) : 0;
}

export function describeProgress(p: ArchiveProgress): string {
  const pct = p.planned > 0 ? ` (${Math.min(100, Math.round((p.moved / p.planned) * 100))} %)` : '';
  const rate = rowsPerSecond(p.moved, p.startedAt, p.updatedAt);
  const state = p.pausedBy ? `paused by ${p.pausedBy}` : p.throttled ? `throttled: ${p.throttled}` : p.phase;
  return `${p.moved}/${p.planned} rows${pct} in ${p.batches} batch(es), ${rate} rows/s; ${state}`;
}
