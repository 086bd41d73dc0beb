/**
 * Loading a chunked full backup with N client sessions in parallel:
 *   1. secondary indexes of the chunked tables are dropped (recorded first, in the
 *      checkpoint) and built once after the rows are in: one sorted build instead of N
 *      million random inserts into each index;
 *   2. every chunk is loaded by one client session in ONE transaction, so it is in or it is
 *      not; done chunks go into the checkpoint (the activity's heartbeat);
 *   3. the indexes are added back.
 * A retried attempt resumes from the checkpoint: done chunks are skipped, each other chunk's
 * key range is counted on the target (all its rows: done; none: load it; some: cannot be
 * after a transaction, but is deleted and loaded again), missing indexes are added.
 * On a scratch server (the drill's own) the load is not written to the binary log.
 */
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import type { RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import type { ClusterConfig } from '../config/schema';
import { Failure } from '../domain/failures';
import { quoteIdentifier } from '../domain/identifiers';
import type { Product } from '../domain/manifest';
import { ChunkRangeSchema, rangeWhere, type ChunkRange } from '../domain/parallelDump';
import { SealError } from '../repository/crypto';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import { compressionOf, decompressor } from '../tools/compression';
import { RateLimit } from '../tools/rateLimit';
import { statementLimitInit, withConnection } from './connection';
import { withDefaultsFile } from './dump';
import { clientSession } from './clientSession';
import { classifyToolStderr } from './errors';

/**
 * A secondary index as SHOW CREATE TABLE writes it for plain column key parts, and nothing
 * else: the clause is added back with ALTER TABLE … ADD from the checkpoint, which is input
 * like any other. An index outside this grammar (functional key parts, a parser) is never
 * dropped, so it is never re-created from text.
 */
const NAME = '`(?:[^`]|``)+`';
const KEY_PART = `${NAME}(?:\\(\\d{1,5}\\))?(?: DESC)?`;
const KEY_CLAUSE = new RegExp(
  `^(?:UNIQUE KEY|KEY|FULLTEXT KEY|SPATIAL KEY) (${NAME}) \\(${KEY_PART}(?:,${KEY_PART})*\\)(?: USING (?:BTREE|HASH))?(?: COMMENT '(?:[^'\\\\]|'')*')?(?: /\\*!80000 INVISIBLE \\*/| IGNORED)?$`,
);

export const LoadCheckpointSchema = z.strictObject({
  full: z.string().max(100),
  into: z.string().max(64),
  /** load: chunks going in (resumable); loaded: past the chunks (a retry starts over). */
  stage: z.enum(['load', 'loaded']),
  /** Chunk artifacts loaded and committed. */
  done: z.array(z.string().max(100)).max(200_000),
  /** Indexes dropped for the load and not yet added back. */
  deferred: z.array(z.strictObject({ table: z.string().max(64), keys: z.array(z.strictObject({ name: z.string().max(64), clause: z.string().regex(KEY_CLAUSE).max(20_000) })) })).max(10_000),
  /** Tables whose indexes were already looked at (dropped or none to drop). */
  prepared: z.array(z.string().max(64)).max(10_000),
});
export type LoadCheckpoint = z.infer<typeof LoadCheckpointSchema>;

export interface LoadChunk {
  table: string;
  artifact: string;
  rows: number;
  range: ChunkRange | null;
}

export interface ParallelLoadRequest {
  /** The administrator account on the target (index changes, counts). */
  admin: ClusterConfig;
  product: Product;
  /** The account the rows are written as (null: admin). */
  credentials: { user: string; password: string } | undefined;
  client: string;
  storage: Storage;
  fullPath: string;
  into: string;
  chunks: LoadChunk[];
  threads: number;
  maxBytesPerSecond: number | null;
  /** A server that holds nothing else (the drill's): the load skips the binary log. */
  scratch: boolean;
  checkpoint: LoadCheckpoint;
  /** A retried attempt (the target may hold rows of an earlier one). */
  resuming: boolean;
  onCheckpoint: (c: LoadCheckpoint) => void;
  onProgress: (p: { phase: string; bytes: number; chunksDone: number; chunks: number; table: string | null }) => void;
  signal?: AbortSignal;
}

export interface ParallelLoadResult {
  loadedBytes: number;
  chunks: number;
  /** Chunks an earlier attempt's checkpoint had as loaded (skipped). */
  fromCheckpoint: number;
  /** Chunks not in the checkpoint found loaded on the target (counted, skipped). */
  resumed: number;
  indexesDeferred: number;
}

/**
 * The named lock a chunk's load session holds until it ends. A session an earlier attempt
 * left behind (its client killed with the chunk already in the server's socket buffer) can
 * still COMMIT it; the resume takes this lock first, so it counts the range only once that
 * session is gone.
 */
export function chunkLockName(into: string, artifact: string): string {
  return `dbops-load-${createHash('sha1').update(`${into}/${artifact}`).digest('hex')}`;
}

/** How long a resume waits for a session of the earlier attempt to end. */
const STRAY_SESSION_WAIT_SECONDS = 600;

function table(into: string, t: string): string {
  return `${quoteIdentifier(into)}.${quoteIdentifier(t)}`;
}

/** Drops the secondary indexes of the tables loaded in more than one chunk; what was dropped goes into the checkpoint first. */
async function deferIndexes(req: ParallelLoadRequest): Promise<number> {
  const counts = new Map<string, number>();
  for (const c of req.chunks) counts.set(c.table, (counts.get(c.table) ?? 0) + 1);
  const tables = [...counts].filter(([t, n]) => n > 1 && !req.checkpoint.prepared.includes(t)).map(([t]) => t);
  if (tables.length === 0) return 0;
  return withConnection(req.admin, async (conn) => {
    let dropped = 0;
    for (const t of tables) {
      const [rows] = await conn.query<RowDataPacket[]>(`SHOW CREATE TABLE ${table(req.into, t)}`);
      const ddl = String(rows[0]?.['Create Table'] ?? '');
      const keys = ddl
        .split('\n')
        .map((line) => line.trim().replace(/,$/, ''))
        .map((clause) => ({ clause, m: KEY_CLAUSE.exec(clause) }))
        .filter((k): k is { clause: string; m: RegExpExecArray } => k.m !== null)
        .map((k) => ({ name: k.m[1]!.slice(1, -1).replace(/``/g, '`'), clause: k.clause }));
      const kept: typeof keys = [];
      for (const k of keys) {
        // Recorded before it is dropped: a crash in between leaves it listed, and adding it back checks first.
        req.checkpoint.deferred = [...req.checkpoint.deferred.filter((d) => d.table !== t), { table: t, keys: [...kept, k] }];
        req.onCheckpoint(req.checkpoint);
        try {
          await conn.query(`ALTER TABLE ${table(req.into, t)} DROP INDEX \`${k.name.replace(/`/g, '``')}\``);
          kept.push(k);
          dropped += 1;
        } catch (error) {
          // 1553: a foreign key needs it. It stays, and is not added back.
          if ((error as { errno?: number }).errno !== 1553) throw error;
        }
      }
      req.checkpoint.deferred = [...req.checkpoint.deferred.filter((d) => d.table !== t), ...(kept.length > 0 ? [{ table: t, keys: kept }] : [])];
      req.checkpoint.prepared = [...req.checkpoint.prepared, t];
      req.onCheckpoint(req.checkpoint);
    }
    return dropped;
  });
}

/** On a resumed load: which chunks not marked done are in fact on the target (their whole key range is). */
async function reconcile(req: ParallelLoadRequest, pending: LoadChunk[]): Promise<{ pending: LoadChunk[]; found: number }> {
  if (!req.resuming || pending.length === 0) return { pending, found: 0 };
  return withConnection(req.admin, async (conn) => {
    const still: LoadChunk[] = [];
    let found = 0;
    for (const c of pending) {
      const lock = chunkLockName(req.into, c.artifact);
      const [got] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS ok', [lock, STRAY_SESSION_WAIT_SECONDS]);
      if (Number(got[0]?.ok) !== 1) {
        throw ApplicationFailure.retryable(`a session of an earlier attempt still loads ${c.artifact} into ${req.into} after ${STRAY_SESSION_WAIT_SECONDS} s; the load resumes once it has ended`, Failure.LoadStillRunning);
      }
      const where = rangeWhere(ChunkRangeSchema.nullable().parse(c.range));
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table(req.into, c.table)}${where}`);
      const n = Number(rows[0]?.n ?? 0);
      if (n === c.rows && n > 0) {
        req.checkpoint.done = [...req.checkpoint.done, c.artifact];
        found += 1;
        continue;
      }
      if (n > 0) await conn.query(`DELETE FROM ${table(req.into, c.table)}${where}`);
      await conn.query('SELECT RELEASE_LOCK(?)', [lock]);
      still.push(c);
    }
    if (found > 0) req.onCheckpoint(req.checkpoint);
    return { pending: still, found };
  });
}

/** One chunk through one client session, in one transaction. */
async function loadChunk(req: ParallelLoadRequest, c: LoadChunk, defaultsFile: string, limit: RateLimit, counted: (n: number) => void): Promise<void> {
  const init = ['SESSION unique_checks=0', statementLimitInit(req.product, req.admin), ...(req.scratch ? ['SESSION sql_log_bin=0'] : [])];
  const child = clientSession(req.client, defaultsFile, init, { binary: true });
  const source = await req.storage.openRead(layout.artifact(req.fullPath, c.artifact));
  const codec = await decompressor(compressionOf(c.artifact));
  const abort = () => {
    child.kill();
    codec.kill();
  };
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    // The chunk's lock is held until this session ends, committed or not (see chunkLockName).
    child.stdin.write(
      `SET NAMES binary;\nSET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO', time_zone='+00:00';\nDO GET_LOCK('${chunkLockName(req.into, c.artifact)}', ${STRAY_SESSION_WAIT_SECONDS});\n` +
        `USE ${quoteIdentifier(req.into)};\nSTART TRANSACTION;\n`,
    );
    const feeding = pipeline(source, codec.input);
    const loading = pipeline(
      codec.output as Readable,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          limit.take(chunk.length).then(() => {
            counted(chunk.length);
            cb(null, chunk);
          }, cb);
        },
        flush(cb) {
          // COMMIT only once the whole chunk decompressed cleanly: a damaged chunk ends its
          // input without one, and the client's session rolls the rows back.
          codec.done.then(
            () => cb(null, Buffer.from('\nCOMMIT;\n')),
            (error: unknown) => cb(error instanceof Error ? error : new Error(String(error))),
          );
        },
      }),
      child.stdin,
    );
    const [fed, decoded, loaded, code] = await Promise.allSettled([feeding, codec.done, loading, child.done]);
    if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'load cancelled', type: 'Cancelled' });
    if (fed.status === 'rejected' && fed.reason instanceof SealError) throw fed.reason;
    const exit = code.status === 'fulfilled' ? code.value.code : -1;
    const stderr = code.status === 'fulfilled' ? code.value.stderr : String(code.reason);
    // The client failing is the cause (the decompressor's broken pipe is its echo); the client
    // never fails on a damaged chunk, whose input simply ends without COMMIT.
    if (exit === 0 && decoded.status === 'rejected') throw new Error(`${c.artifact}: ${(decoded.reason as Error)?.message ?? String(decoded.reason)}`);
    if (exit !== 0) {
      const classified = classifyToolStderr(stderr, req.admin.name);
      if (classified) throw classified;
      throw ApplicationFailure.nonRetryable(`loading ${c.artifact} into ${req.into}.${c.table} failed (exit ${exit}): ${stderr.trim().split('\n').slice(-3).join(' ')}`, Failure.ReplayError);
    }
    for (const x of [fed, loaded]) if (x.status === 'rejected') throw x.reason instanceof Error ? x.reason : new Error(String(x.reason));
  } finally {
    req.signal?.removeEventListener('abort', abort);
    codec.kill();
  }
}

/** Adds back the indexes dropped for the load (those not there already), one table per session. */
async function restoreIndexes(req: ParallelLoadRequest, onTable: (t: string) => void): Promise<void> {
  const queue = [...req.checkpoint.deferred];
  const work = async () => {
    for (let d = queue.shift(); d; d = queue.shift()) {
      const deferred = d;
      onTable(deferred.table);
      await withConnection(req.admin, async (conn) => {
        const [rows] = await conn.query<RowDataPacket[]>(`SHOW INDEX FROM ${table(req.into, deferred.table)}`);
        const present = new Set(rows.map((r) => String(r.Key_name)));
        const missing = deferred.keys.filter((k) => !present.has(k.name));
        // InnoDB builds one FULLTEXT index per ALTER; the others go together, in one pass.
        const fulltext = missing.filter((k) => k.clause.startsWith('FULLTEXT'));
        const others = missing.filter((k) => !k.clause.startsWith('FULLTEXT'));
        for (const group of [others, ...fulltext.map((k) => [k])]) {
          if (group.length > 0) await conn.query(`ALTER TABLE ${table(req.into, deferred.table)} ${group.map((k) => `ADD ${k.clause}`).join(', ')}`);
        }
      });
      req.checkpoint.deferred = req.checkpoint.deferred.filter((x) => x.table !== deferred.table);
      req.onCheckpoint(req.checkpoint);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(req.threads, queue.length)) }, work));
}

/** ER_LOCK_DEADLOCK as the client reports it. */
const DEADLOCK = /ERROR 1213 \(40001\)/;
const DEADLOCK_RETRIES = 4;

export async function loadChunksInParallel(req: ParallelLoadRequest): Promise<ParallelLoadResult> {
  const indexesDeferred = await deferIndexes(req);
  const done = new Set(req.checkpoint.done);
  const { pending, found } = await reconcile(req, req.chunks.filter((c) => !done.has(c.artifact)));
  const limit = new RateLimit(req.maxBytesPerSecond);
  let loadedBytes = 0;
  let chunksDone = req.chunks.length - pending.length;
  let current: string | null = null;
  const report = (phase: string) => req.onProgress({ phase, bytes: loadedBytes, chunksDone, chunks: req.chunks.length, table: current });
  const queue = [...pending].sort((a, b) => b.rows - a.rows);
  let failed: unknown = null;
  await withDefaultsFile(
    req.admin,
    async (defaultsFile) => {
      const work = async () => {
        while (failed === null) {
          if (req.signal?.aborted) {
            failed = ApplicationFailure.create({ message: 'load cancelled', type: 'Cancelled' });
            return;
          }
          const c = queue.shift();
          if (!c) return;
          current = c.table;
          try {
            for (let attempt = 1; ; attempt++) {
              let bytes = 0;
              try {
                await loadChunk(req, c, defaultsFile, limit, (n) => {
                  bytes += n;
                  loadedBytes += n;
                });
                break;
              } catch (error) {
                loadedBytes -= bytes;
                // A chunk is one transaction: a deadlock rolled all of it back, so it is
                // simply loaded again (InnoDB's own advice), a few times, before failing.
                if (req.signal?.aborted || attempt >= DEADLOCK_RETRIES || !DEADLOCK.test(String(error))) throw error;
              }
            }
            chunksDone += 1;
            req.checkpoint.done = [...req.checkpoint.done, c.artifact];
            req.onCheckpoint(req.checkpoint);
            report('load');
          } catch (error) {
            // Stopped on purpose: whatever the killed sessions said, the load was cancelled.
            failed ??= req.signal?.aborted ? ApplicationFailure.create({ message: 'load cancelled', type: 'Cancelled' }) : error;
          }
        }
      };
      const ticker = setInterval(() => report('load'), 1000);
      try {
        await Promise.all(Array.from({ length: Math.max(1, Math.min(req.threads, queue.length)) }, work));
      } finally {
        clearInterval(ticker);
      }
    },
    req.credentials,
  );
  if (failed !== null) throw failed;
  await restoreIndexes(req, (t) => {
    current = t;
    report(`index ${t}`);
  });
  return { loadedBytes, chunks: req.chunks.length, fromCheckpoint: done.size, resumed: found, indexesDeferred };
}
