/**
 * Restores into a NEW database on the cluster, never over live data: the full backup is
 * streamed out of the repository through the database filter (select + rename) into one
 * client session, then the binlogs are replayed with ONE mysqlbinlog process into ONE
 * client session (TZ=UTC), stopping exactly at the target.
 */
import { SealError } from '../repository/crypto';
import { Failure } from '../domain/failures';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import { DumpDatabaseFilter } from '../domain/dumpRewrite';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import { readRestoreClaim, writeRestoreClaim } from '../repository/restoreClaims';
import { ReplayRefused, ReplayStream } from '../domain/restore/replayStream';
import { createScopedAccount, dropScopedAccount, restoreAccount, type ScopedAccount } from './restoreAccount';
import { binlogToolOf, replayArguments, serverSchemas, unpackBinlogs } from './binlogRead';
import { verifyDatabase } from './verify';
import { clientSession } from './clientSession';
import { LoadCheckpointSchema, loadChunksInParallel, type LoadCheckpoint, type ParallelLoadResult } from './parallelLoad';
import { createRoutedObjects, currentDefiner, definerOf, disableEvents, originalsMap, restoreDefiners } from './schemaObjects';
import { quoteIdentifier } from '../domain/identifiers';
import type { Product } from '../domain/manifest';
import type { RestorePlan } from '../domain/restorePlan';
import { compressionOf, decompressor } from '../tools/compression';
import { withDefaultsFile } from './dump';
import { classifyToolStderr } from './errors';
import { statementLimitInit, withConnection } from './connection';
import { childEnv, findTool } from '../tools/tools';


export const MARKER_PREFIX = 'dbops restore ';

export interface ReplayReached {
  file: string | null;
  position: number | null;
  gtid: string | null;
  transactions: number;
}

export interface RestoreDatabaseResult {
  into: string;
  loadedBytes: number;
  replay: ReplayReached;
  /** DDL lines (views, triggers, routines) whose qualified references to the source database were rewritten. */
  rewrittenReferences: number;
  /** Replayed statements rewritten to the target, and statements left out (account management). */
  rewrittenStatements: number;
  skippedStatements: number;
  /** Views, triggers, routines and events given their original DEFINER back. */
  definersRestored: number;
  /** DDL of the dump naming other databases (kept; the restore's account decides). */
  warnings: string[];
  durationMs: { load: number; replay: number };
  /** With expectRows: tables checked at the snapshot, and what did not match. */
  snapshotCheck: { tables: number; mismatches: string[] } | null;
  /** A chunked full: chunks loaded, chunks an earlier attempt had loaded, indexes built after the rows. */
  parallel?: { chunks: number; fromCheckpoint: number; resumed: number; indexesDeferred: number; threads: number } | null;
}

/**
 * Does the database exist, and did this run create it (a retry) or someone else? On a
 * live server the answer is the run's claim in the repository; on a drill's private
 * server (`claims` null) whatever exists was made by the drill.
 */
export async function targetState(cluster: ClusterConfig, database: string, claims: { storage: Storage; run: string } | null): Promise<'absent' | 'ours' | 'foreign'> {
  const exists = await withConnection(restoreAccount(cluster), async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    return rows.length > 0;
  });
  if (!exists) return 'absent';
  if (claims === null) return 'ours';
  const claim = await readRestoreClaim(claims.storage, cluster.name, database);
  return claim?.run === claims.run && claim.state === 'created' ? 'ours' : 'foreign';
}

function clientTool(cluster: ClusterConfig, product: Product): string {
  return cluster.tools.client ?? (product === 'mariadb' ? 'mariadb' : 'mysql');
}

function failure(what: string, result: { code: number | null; stderr: string }, cluster: string): Error {
  const classified = classifyToolStderr(result.stderr, cluster);
  if (classified) return classified;
  return ApplicationFailure.nonRetryable(`${what} failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`, Failure.ReplayError);
}

export interface RestoreDatabaseRequest {
  cluster: ClusterConfig;
  product: Product;
  /** The repository's storage, where the plan's artifacts are. */
  storage: Storage;
  /** Where the backups are read from, when not `storage` (the primary and its copies, nearest first). */
  backups?: Storage;
  plan: RestorePlan;
  into: string;
  marker: string;
  onProgress: (p: { phase: string; bytes: number }) => void;
  signal?: AbortSignal;
  /** Row counts the full backup recorded: checked right after the load, before any replay. */
  expectRows?: Array<{ table: string; rows: number }>;
  /** A chunked full: where an earlier attempt of this run got to (its last checkpoint, unchecked), and where to report it. */
  resume?: unknown;
  onCheckpoint?: (c: LoadCheckpoint) => void;
  /** The target holds nothing but this restore (the drill's private server): the load is not binlogged. */
  scratch?: boolean;
  /**
   * A restore on a live server: load and replay as an account of this restore that can write
   * only `into`, objects created by the administrator, definers put back at the end. Off for
   * the drill's private server, where the restore is the only thing on it.
   */
  confine: boolean;
}


/** "ERROR 1142 (42000) at line 39: …" of the client, with the binlog position and statement of line 39. */
function replayFailure(stream: ReplayStream, into: string, result: { code: number | null; stderr: string }, cluster: string): Error {
  const line = /ERROR \d+ \([0-9A-Z]+\) at line (\d+)/.exec(result.stderr);
  const at = line?.[1] ? stream.positionAtLine(Number(line[1])) : null;
  const message = result.stderr.trim().split('\n').slice(-3).join(' ');
  if (/ERROR 1105 .*Unknown error/.test(message) && at?.statement === 'BINLOG row event') {
    // MySQL reports a row event refused by table privileges this way (the reason goes to the error log).
    return ApplicationFailure.nonRetryable(`replaying into ${into} stopped at ${at.file}:${at.position}: a row event was refused by the server (privileges of the restore account: it may write only ${into})`, Failure.ReplayError);
  }
  const where = at ? ` at ${at.file}:${at.position} (${at.statement})` : '';
  return ApplicationFailure.nonRetryable(`replaying into ${into} stopped${where}: ${message.replace(/^.*?ERROR/, 'ERROR')}`, Failure.ReplayError);
  void cluster;
}

/**
 * One dump artifact (a full's dump, or a chunked full's schema or triggers): decompress ->
 * select + rename + confine -> one client session. `discard`: only through the filter (to
 * collect the objects it routes), nothing is sent to the server.
 */
async function loadDumpArtifact(
  req: RestoreDatabaseRequest,
  client: string,
  artifact: string,
  filter: DumpDatabaseFilter,
  credentials: { user: string; password: string } | undefined,
  discard: boolean,
  onBytes: (n: number) => void,
): Promise<void> {
  const admin = restoreAccount(req.cluster);
  await withDefaultsFile(admin, async (defaultsFile) => {
    const session = discard ? null : clientSession(client, defaultsFile, [statementLimitInit(req.product, req.cluster)]);
    // Opened before the codec starts: a missing object must not leave a decompressor waiting on its input.
    const source = await (req.backups ?? req.storage).openRead(layout.artifact(req.plan.full.path, artifact));
    const codec = await decompressor(compressionOf(artifact));
    const abort = () => {
      codec.kill();
      session?.kill();
    };
    req.signal?.addEventListener('abort', abort, { once: true });
    try {
      const feeding = pipeline(source, codec.input);
      const loading = pipeline(
        codec.output as Readable,
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            onBytes(chunk.length);
            for (const part of filter.push(chunk)) if (!discard) this.push(part);
            cb();
          },
          flush(cb) {
            for (const part of filter.finish()) if (!discard) this.push(part);
            cb();
          },
        }),
        session ? session.stdin : new Writable({ write: (_c, _e, cb) => cb() }),
      );
      const [decoded, fed, loaded, result] = await Promise.allSettled([codec.done, feeding, loading, session ? session.done : Promise.resolve({ code: 0, stderr: '' })]);
      // Damage found while reading the stored object is the cause; the codec's "unexpected end" is its echo.
      if (fed.status === 'rejected' && fed.reason instanceof SealError) throw fed.reason;
      if (decoded.status === 'rejected') throw new Error(`${req.plan.full.id}/${artifact}: ${(decoded.reason as Error)?.message ?? String(decoded.reason)}`);
      const r = result.status === 'fulfilled' ? result.value : { code: -1, stderr: String(result.reason) };
      if (r.code !== 0) throw failure(`loading ${artifact} of full backup ${req.plan.full.id} into ${req.into}`, r, req.cluster.name);
      for (const x of [fed, loaded]) if (x.status === 'rejected') throw x.reason instanceof Error ? x.reason : new Error(String(x.reason));
    } finally {
      req.signal?.removeEventListener('abort', abort);
    }
  }, credentials);
}

/** Would this restore resume a chunked load from `resume`? */
export function resumesLoad(plan: RestorePlan, into: string, resume: unknown): boolean {
  return resumableLoad({ plan, into, resume }) !== null;
}

/** The checkpoint to resume from: one of this full into this database, still loading chunks. */
function resumableLoad(req: Pick<RestoreDatabaseRequest, 'plan' | 'into' | 'resume'>): LoadCheckpoint | null {
  if (!req.plan.full.parallel || req.resume === undefined) return null;
  const parsed = LoadCheckpointSchema.safeParse(req.resume);
  if (!parsed.success) return null;
  const c = parsed.data;
  return c.stage === 'load' && c.full === req.plan.full.id && c.into === req.into ? c : null;
}

export async function restoreDatabase(req: RestoreDatabaseRequest): Promise<RestoreDatabaseResult> {
  if (req.plan.full.physical) {
    throw ApplicationFailure.nonRetryable(`full ${req.plan.full.id} is physical: it restores a whole instance (a server started on its files), not a database into ${req.cluster.name}`, Failure.InvalidInput);
  }
  const admin = restoreAccount(req.cluster);
  const into = quoteIdentifier(req.into);
  // Idempotent: a retry drops what this run created; anything else is never touched.
  const claims = req.confine ? { storage: req.storage, run: req.marker } : null;
  const state = await targetState(req.cluster, req.into, claims);
  if (state === 'foreign') {
    throw ApplicationFailure.nonRetryable(`database ${req.into} already exists on ${req.cluster.name}; restore into a new name (--into)`, Failure.InvalidInput);
  }
  if (state === 'absent' && claims) await writeRestoreClaim(req.storage, req.cluster.name, req.into, req.marker, 'claimed');
  // A chunked load an earlier attempt of this run left part way resumes where it got to.
  const resume = resumableLoad(req);
  const resuming = state === 'ours' && resume !== null;
  if (!resuming) await withConnection(admin, async (conn) => {
    if (state === 'ours') await conn.query(`DROP DATABASE ${into}`);
    // MariaDB shows the run on the database as well (a mark for people; the claim decides).
    const comment = req.product === 'mariadb' ? ` COMMENT ${conn.escape(MARKER_PREFIX + req.marker)}` : '';
    try {
      await conn.query(`CREATE DATABASE ${into} CHARACTER SET utf8mb4${comment}`);
    } catch (error) {
      if ((error as { errno?: number }).errno === 1007) {
        throw ApplicationFailure.nonRetryable(`database ${req.into} was created on ${req.cluster.name} by someone else meanwhile; restore into a new name (--into)`, Failure.InvalidInput);
      }
      throw error;
    }
  });
  if (claims) await writeRestoreClaim(req.storage, req.cluster.name, req.into, req.marker, 'created');
  const schemas = await serverSchemas(req.cluster);
  const scoped = req.confine ? await withConnection(admin, (conn) => createScopedAccount(conn, req.product, req.into, req.marker)) : null;
  const credentials = scoped ? { user: scoped.user, password: scoped.password } : undefined;
  try {
    return await loadAndReplay(req, schemas, scoped, credentials, resuming ? resume : null);
  } finally {
    if (scoped) await withConnection(admin, (conn) => dropScopedAccount(conn, scoped));
  }
}

async function loadAndReplay(
  req: RestoreDatabaseRequest,
  schemas: Set<string>,
  scoped: ScopedAccount | null,
  credentials: { user: string; password: string } | undefined,
  resume: LoadCheckpoint | null,
): Promise<RestoreDatabaseResult> {
  const admin = restoreAccount(req.cluster);
  const client = await findTool(clientTool(req.cluster, req.product));
  const started = Date.now();
  let loadedBytes = 0;
  const filter = new DumpDatabaseFilter(req.plan.database, req.into, schemas, { routeObjects: scoped !== null });

  // 1. The full: decompress -> select + rename + confine -> one client session; a chunked
  //    full loads its schema that way, then its chunks in parallel, then its triggers.
  const load = (artifact: string, f: DumpDatabaseFilter, discard = false) =>
    loadDumpArtifact(req, client, artifact, f, credentials, discard, (n) => {
      loadedBytes += n;
      req.onProgress({ phase: 'load', bytes: loadedBytes });
    });
  // A resumed load has its schema in place already: the schema is read again only for the objects it routes.
  await load(req.plan.full.artifact, filter, resume !== null);
  let parallel: ParallelLoadResult | null = null;
  if (req.plan.full.parallel) {
    const checkpoint: LoadCheckpoint = resume ?? { full: req.plan.full.id, into: req.into, stage: 'load', done: [], deferred: [], prepared: [] };
    const settings = req.cluster.restoreLoad;
    parallel = await loadChunksInParallel({
      admin,
      product: req.product,
      credentials,
      client,
      storage: req.backups ?? req.storage,
      fullPath: req.plan.full.path,
      into: req.into,
      chunks: req.plan.full.parallel.chunks,
      threads: settings.threads,
      maxBytesPerSecond: settings.maxMiBPerSecond ? settings.maxMiBPerSecond * 1024 * 1024 : null,
      scratch: req.scratch ?? false,
      checkpoint,
      resuming: resume !== null,
      onCheckpoint: (c) => req.onCheckpoint?.(c),
      onProgress: (p) => req.onProgress({ phase: `load: ${p.chunksDone}/${p.chunks} chunks${p.table ? `, ${p.phase === 'load' ? 'table' : 'building indexes of'} ${p.table}` : ''}`, bytes: loadedBytes + p.bytes }),
      signal: req.signal,
    });
    loadedBytes += parallel.loadedBytes;
    // From here on a retry starts over: triggers and replay are not idempotent.
    req.onCheckpoint?.({ ...checkpoint, stage: 'loaded' });
    // A filter reads one dump from its start: the triggers get their own, and it reports into the first's.
    const triggers = new DumpDatabaseFilter(req.plan.database, req.into, schemas, { routeObjects: scoped !== null });
    await load(req.plan.full.parallel.triggers, triggers);
    filter.objects.push(...triggers.objects);
    filter.definers.push(...triggers.definers);
    filter.warnings.push(...triggers.warnings);
    filter.rewrittenReferences += triggers.rewrittenReferences;
  }
  if (scoped) {
    // Views, triggers, routines and events: created by the administrator, run as the restore's account.
    await withConnection(admin, (conn) => createRoutedObjects(conn, req.into, filter.objects, definerOf(scoped)));
  }
  const loadMs = Date.now() - started;
  let snapshotCheck: RestoreDatabaseResult['snapshotCheck'] = null;
  if (req.expectRows) {
    const loaded = new Map((await verifyDatabase(req.cluster, req.into)).map((v) => [v.table, v.rows]));
    const mismatches = req.expectRows
      .filter((e) => loaded.get(e.table) !== e.rows)
      .map((e) => `${req.plan.database}.${e.table}: ${loaded.has(e.table) ? `${loaded.get(e.table)} rows` : 'missing'}, the backup recorded ${e.rows}`);
    snapshotCheck = { tables: req.expectRows.length, mismatches };
  }

  // 2. The binlogs: ONE mysqlbinlog over all files, confined, into ONE client session, TZ=UTC.
  const replayStarted = Date.now();
  const { reached, stream } = await replayBinlogs(req, schemas, credentials, client, () => loadedBytes);

  // 3. Definers back to the originals; every restored event disabled.
  let definersRestored = 0;
  if (scoped) {
    const originals = originalsMap([...filter.objects, ...stream.report.definers]);
    definersRestored = await withConnection(admin, async (conn) => {
      const fixed = await restoreDefiners(conn, req.into, scoped, originals, await currentDefiner(conn));
      await disableEvents(conn, req.into);
      return fixed.length;
    });
  }
  return {
    into: req.into,
    loadedBytes,
    replay: reached,
    rewrittenReferences: filter.rewrittenReferences,
    rewrittenStatements: stream.report.rewritten.length,
    skippedStatements: stream.report.skipped.length,
    definersRestored,
    warnings: filter.warnings,
    snapshotCheck,
    parallel: parallel ? { chunks: parallel.chunks, fromCheckpoint: parallel.fromCheckpoint, resumed: parallel.resumed, indexesDeferred: parallel.indexesDeferred, threads: req.cluster.restoreLoad.threads } : null,
    durationMs: { load: loadMs, replay: Date.now() - replayStarted },
  };
}

/**
 * The plan's binlogs: ONE mysqlbinlog over all files, confined to the plan's database
 * (renamed to `into`), into ONE client session, TZ=UTC, stopping exactly at the target.
 */
async function replayBinlogs(
  req: RestoreDatabaseRequest,
  schemas: Set<string>,
  credentials: { user: string; password: string } | undefined,
  client: string,
  loadedBytes: () => number,
  excludeGtids: string | null = null,
): Promise<{ reached: ReplayReached; stream: ReplayStream }> {
  const admin = restoreAccount(req.cluster);
  const reached: ReplayReached = { file: req.plan.start.file, position: req.plan.start.position, gtid: null, transactions: 0 };
  const stream = new ReplayStream({ mode: 'replay', context: { source: req.plan.database, target: req.into, schemas }, firstFile: req.plan.binlogs[0]?.file ?? req.plan.start.file });
  if (req.plan.binlogs.length > 0) {
    const work = await mkdtemp(path.join(tmpdir(), `dbops-replay-${process.pid}-`));
    try {
      const files = await unpackBinlogs(req.plan, req.backups ?? req.storage, work, (file) => req.onProgress({ phase: `unpack ${file}`, bytes: loadedBytes() }));
      const args = replayArguments(req.product, req.plan, req.into, excludeGtids);
      const binlogTool = await findTool(binlogToolOf(req.cluster, req.product));
      await withDefaultsFile(admin, async (defaultsFile) => {
        const session = clientSession(client, defaultsFile, [statementLimitInit(req.product, req.cluster)]);
        const decoder = spawn(binlogTool, [...args, ...files], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv({ TZ: 'UTC' }) });
        let decodeErr = '';
        decoder.stderr.on('data', (d: Buffer) => (decodeErr += d.toString()));
        const decoded = new Promise<number | null>((resolve) => decoder.on('close', resolve));
        const abort = () => {
          decoder.kill('SIGKILL');
          session.kill();
        };
        req.signal?.addEventListener('abort', abort, { once: true });
        let tail = '';
        const guard = new Transform({
          transform(chunk: Buffer, _e, cb) {
            let out: string[];
            try {
              out = stream.push(chunk.toString('utf8'));
            } catch (error) {
              // Stop the client before it can see the end of its input (it would run a partial statement).
              abort();
              cb(error as Error);
              return;
            }
            // Follow "end_log_pos N", "GTID d-s-n" and "Rotate to F" in the headers.
            const text = tail + out.join('');
            const lines = text.split('\n');
            tail = lines.pop() ?? '';
            for (const line of lines) {
              if (line.charCodeAt(0) !== 0x23 /* # */) continue;
              const pos = /end_log_pos (\d+)/.exec(line);
              if (pos?.[1]) reached.position = Number(pos[1]);
              const gtid = /\sGTID (\d+-\d+-\d+)/.exec(line) ?? /\sGTID\s+last_committed=\S+\s+sequence_number=\S+/.exec(line);
              if (gtid) {
                if (gtid[1]) reached.gtid = gtid[1];
                reached.transactions += 1;
              }
              const rotate = /Rotate to (\S+)\s+pos: (\d+)/.exec(line);
              if (rotate?.[1]) reached.file = rotate[1];
            }
            cb(null, out.join(''));
          },
          flush(cb) {
            try {
              const rest = stream.finish().join('');
              if (stream.lastSourceGtid) reached.gtid = stream.lastSourceGtid;
              cb(null, rest);
            } catch (error) {
              abort();
              cb(error as Error);
            }
          },
        });
        try {
          const piping = pipeline(decoder.stdout, guard, session.stdin);
          const [code, r, piped] = await Promise.all([decoded, session.done, piping.then(() => null, (e: unknown) => e)]);
          if (piped instanceof ReplayRefused) throw ApplicationFailure.nonRetryable(`replay into ${req.into} refused before writing it: ${piped.message}`, Failure.ReplayError);
          if (code !== 0) throw failure(`mysqlbinlog over ${files.length} binlog(s)`, { code, stderr: decodeErr }, req.cluster.name);
          if (r.code !== 0) throw replayFailure(stream, req.into, r, req.cluster.name);
          if (piped) throw piped instanceof Error ? piped : new Error(String(piped));
        } finally {
          req.signal?.removeEventListener('abort', abort);
        }
      }, credentials);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return { reached, stream };
}

/**
 * Point in time on a server started from a physical full: the database is already there,
 * as it was at the copy's binlog position, so only the binlogs are replayed (as the
 * server's administrator; the server is the restore's own, nothing else is on it).
 */
export async function replayIntoRestoredInstance(req: Omit<RestoreDatabaseRequest, 'into' | 'confine'>): Promise<RestoreDatabaseResult> {
  const full = { ...req, into: req.plan.database, confine: false };
  if (!req.plan.full.physical) throw ApplicationFailure.nonRetryable(`full ${req.plan.full.id} is logical: load it with restoreDatabase`, Failure.InvalidInput);
  if ((await targetState(req.cluster, full.into, null)) === 'absent') {
    throw ApplicationFailure.nonRetryable(`database ${full.into} is not in physical full ${req.plan.full.id}`, Failure.InvalidInput);
  }
  const schemas = await serverSchemas(req.cluster);
  const client = await findTool(clientTool(req.cluster, req.product));
  const started = Date.now();
  // A MySQL clone's replay starts before the copy's own point: what the copy holds is skipped by GTID.
  const held =
    req.plan.full.physical.format === 'clone-tar'
      ? await withConnection(restoreAccount(req.cluster), async (conn) => {
          const [rows] = await conn.query<RowDataPacket[]>('SELECT @@GLOBAL.gtid_executed AS g');
          return String(rows[0]?.g ?? '').replace(/\s+/g, '') || null;
        })
      : null;
  const { reached, stream } = await replayBinlogs(full, schemas, undefined, client, () => 0, held);
  return {
    into: full.into,
    loadedBytes: 0,
    replay: reached,
    rewrittenReferences: 0,
    rewrittenStatements: stream.report.rewritten.length,
    skippedStatements: stream.report.skipped.length,
    definersRestored: 0,
    warnings: [],
    snapshotCheck: null,
    parallel: null,
    durationMs: { load: 0, replay: Date.now() - started },
  };
}
