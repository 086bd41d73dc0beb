/**
 * The parallel logical full backup: N sessions read ONE consistent snapshot, each table is
 * split into primary-key ranges, and every range becomes its own compressed, checksummed
 * chunk artifact. The schema (tables, views, routines, events) and the triggers are two
 * more artifacts written by the product's own dump tool with --no-data.
 *
 * One snapshot for all sessions, without FLUSH TABLES WITH READ LOCK (which stalls every
 * write behind any long query):
 *   - MariaDB: each session's START TRANSACTION WITH CONSISTENT SNAPSHOT reports the binlog
 *     position it is consistent with; when all sessions report the same one they see the
 *     same data, and that is the snapshot's position. No lock at all. Under a heavy write
 *     load the sessions may keep landing on different positions; after a few tries the
 *     tables are held still for the moment the sessions start, as below.
 *   - MySQL: the dump guard (LOCK INSTANCE FOR BACKUP, then LOCK TABLES … READ on the
 *     dumped tables, position read under them), the sessions start, the tables are let go.
 *
 * The rows are rendered to SQL literals by the server (see domain/parallelDump), read with
 * character_set_results=binary and time_zone UTC, so no value passes through a conversion.
 *
 * One file of about 420 lines on purpose: the snapshot, the chunk writer and the run share
 * the session type and the progress record, and read best together.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { createConnection as createCoreConnection, type Connection as CoreConnection } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import type { Artifact, Compression, Product } from '../domain/manifest';
import {
  chunkArtifactName,
  chunkSelect,
  insertHead,
  isIntegerType,
  planChunks,
  quoteName,
  tableRows,
  type Chunk,
  type ChunkRange,
  type ColumnInfo,
  type ParallelLayout,
} from '../domain/parallelDump';
import type { DumpFacts } from '../domain/dumpScanner';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import { compressor, EXTENSIONS, zstdStreamTest } from '../tools/compression';
import { RateLimit } from '../tools/rateLimit';
import { findTool } from '../tools/tools';
import { connectionOptions, limitStatements } from './connection';
import { dumpToolName, toolVersion, withDefaultsFile, writeCompressedDump, type DumpProgress } from './dump';
import { openMysqlDumpGuard, type SnapshotPosition } from './dumpGuard';
import { toFailure } from './errors';

export interface ParallelDumpRequest {
  cluster: ClusterConfig;
  product: Product;
  databases: string[];
  threads: number;
  chunkRows: number;
  /** Raw bytes per second all sessions together may read (null: no limit). */
  maxBytesPerSecond: number | null;
  compression: Compression;
  compressionLevel?: number;
  storage: Storage;
  stagingKey: string;
  onProgress?: (p: ParallelDumpProgress) => void;
  signal?: AbortSignal;
}

export interface ParallelDumpProgress extends DumpProgress {
  chunksDone: number;
  chunks: number;
  rows: number;
}

export interface ParallelDumpResult {
  artifacts: Artifact[];
  layout: ParallelLayout;
  facts: DumpFacts;
  tool: { name: string; version: string };
  durationMs: number;
  /** How the snapshot was made consistent: no lock, or tables held for how long. */
  consistency: { method: 'snapshot-positions' | 'table-locks'; heldMs: number };
}

interface TableInfo {
  database: string;
  table: string;
  rows: number;
  columns: ColumnInfo[];
  key: string | null;
}

/** Base tables of the databases, with their columns and a single-column integer primary key where there is one. */
async function describeTables(conn: Connection, databases: string[]): Promise<TableInfo[]> {
  const [tables] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, COALESCE(TABLE_ROWS, 0) AS n FROM information_schema.TABLES
      WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2`,
    [databases],
  );
  const [columns] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, COLUMN_NAME AS c, LOWER(DATA_TYPE) AS type, CHARACTER_SET_NAME AS cs, EXTRA AS extra, COLUMN_KEY AS k
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    [databases],
  );
  const [keys] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, MAX(COLUMN_NAME) AS c, COUNT(*) AS n FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA IN (?) AND INDEX_NAME = 'PRIMARY' GROUP BY TABLE_SCHEMA, TABLE_NAME`,
    [databases],
  );
  const id = (db: unknown, t: unknown) => `${String(db)}\u0000${String(t)}`;
  const byTable = new Map<string, ColumnInfo[]>();
  for (const r of columns) {
    const list = byTable.get(id(r.db, r.t)) ?? [];
    list.push({ name: String(r.c), dataType: String(r.type), charset: r.cs === null ? null : String(r.cs), generated: /GENERATED/i.test(String(r.extra ?? '')) });
    byTable.set(id(r.db, r.t), list);
  }
  const primary = new Map(keys.filter((k) => Number(k.n) === 1).map((k) => [id(k.db, k.t), String(k.c)]));
  return tables.map((r) => {
    const cols = byTable.get(id(r.db, r.t)) ?? [];
    const key = primary.get(id(r.db, r.t)) ?? null;
    const keyColumn = cols.find((c) => c.name === key);
    return { database: String(r.db), table: String(r.t), rows: Number(r.n), columns: cols, key: keyColumn && isIntegerType(keyColumn.dataType) ? key : null };
  });
}

/** The promise API for statements; its core connection (`core`) streams rows. */
type Session = Connection & { core: CoreConnection };

async function openSession(cluster: ClusterConfig): Promise<Session> {
  const core = createCoreConnection(connectionOptions(cluster));
  core.on('error', () => undefined); // a fatal error also fails the statement in flight, which reports it
  const conn = Object.assign(core.promise(), { core });
  await limitStatements(conn, cluster);
  // Results as bytes, and string functions working in bytes: MySQL's QUOTE converts its
  // argument to the connection's character set, which must then be binary to stay byte-wise.
  await conn.query("SET SESSION time_zone = '+00:00', character_set_results = binary, character_set_connection = binary");
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  return conn;
}

async function snapshotPosition(conn: Connection): Promise<{ file: string; position: number }> {
  const [rows] = await conn.query<RowDataPacket[]>("SHOW SESSION STATUS WHERE Variable_name IN ('binlog_snapshot_file', 'binlog_snapshot_position')");
  const v = new Map(rows.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]));
  return { file: v.get('binlog_snapshot_file') ?? '', position: Number(v.get('binlog_snapshot_position') ?? -1) };
}

const startSnapshot = (conn: Connection) => conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');

/**
 * N sessions in one snapshot, and its binlog position. The caller ends the sessions.
 * `held` is how long writes to the dumped tables had to wait (0 when no lock was taken).
 */
async function openSnapshots(
  req: ParallelDumpRequest,
  sessions: Connection[],
): Promise<{ position: SnapshotPosition; method: ParallelDumpResult['consistency']['method']; heldMs: number; close: () => Promise<void> }> {
  const none = async () => undefined;
  if (req.product === 'mariadb') {
    for (let attempt = 0; attempt < 5; attempt++) {
      await Promise.all(sessions.map(startSnapshot));
      const positions = await Promise.all(sessions.map(snapshotPosition));
      const first = positions[0]!;
      if (first.file && positions.every((p) => p.file === first.file && p.position === first.position)) {
        return { position: { ...first, gtidSet: await gtidAt(sessions[0]!, first) }, method: 'snapshot-positions', heldMs: 0, close: none };
      }
      await Promise.all(sessions.map((s) => s.query('ROLLBACK')));
    }
  }
  const guard = await openMysqlDumpGuard(req.cluster, req.databases, { instance: req.product === 'mysql' });
  const locked = Date.now();
  try {
    await Promise.all(sessions.map(startSnapshot));
    let position: SnapshotPosition = guard.position;
    if (req.product === 'mariadb') {
      const p = await snapshotPosition(sessions[0]!);
      position = { ...p, gtidSet: await gtidAt(sessions[0]!, p) };
    }
    await guard.release();
    return { position, method: 'table-locks', heldMs: Date.now() - locked, close: () => guard.close() };
  } catch (error) {
    await guard.close();
    throw error;
  }
}

/** MariaDB's GTID position at a binlog offset (what `mariadb-dump --gtid` records). */
async function gtidAt(conn: Connection, p: { file: string; position: number }): Promise<string | null> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT CAST(BINLOG_GTID_POS(?, ?) AS CHAR) AS g', [p.file, p.position]);
  const raw: unknown = rows[0]?.g;
  const g = raw === null || raw === undefined ? '' : Buffer.isBuffer(raw) ? raw.toString('latin1') : String(raw);
  return g === '' ? null : g;
}

const BATCH_BYTES = 1024 * 1024;
const COMMA = Buffer.from(',');
const END = Buffer.from(';\n');

interface ChunkTask {
  database: string;
  table: TableInfo;
  range: ChunkRange | null;
  artifact: string;
}

/** One chunk: the rows of a key range, as INSERT statements, compressed, hashed and test-decompressed on the way to storage. */
async function writeChunk(
  conn: Session,
  task: ChunkTask,
  req: ParallelDumpRequest,
  limit: RateLimit,
  progress: ParallelDumpProgress,
): Promise<{ artifact: Artifact; rows: number }> {
  const rawHash = createHash('sha256');
  const storedHash = createHash('sha256');
  let rawSize = 0;
  let size = 0;
  let rows = 0;
  const codec = await compressor(req.compression, req.compressionLevel);
  const tester = req.compression === 'zstd' ? await zstdStreamTest() : null;
  const sink = await req.storage.openWrite(layout.artifact(req.stagingKey, task.artifact));
  const stored = pipeline(
    codec.output as Readable,
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        storedHash.update(chunk);
        size += chunk.length;
        progress.storedBytes += chunk.length;
        cb(null, chunk);
      },
    }),
    ...(tester ? [tester.feed] : []),
    sink.stream,
  ).then(() => sink.done);
  const head = Buffer.from(insertHead(task.table.table, task.table.columns));
  const write = async (buf: Buffer): Promise<void> => {
    rawHash.update(buf);
    rawSize += buf.length;
    progress.rawBytes += buf.length;
    if (!codec.input.write(buf)) await once(codec.input, 'drain');
  };
  const kill = () => {
    codec.kill();
    tester?.kill();
  };
  const abort = () => {
    conn.core.destroy();
    kill();
  };
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    let parts: Buffer[] = [];
    let batch = 0;
    const flush = async () => {
      if (parts.length === 0) return;
      const buf = Buffer.concat([head, ...parts, END]);
      parts = [];
      batch = 0;
      await limit.take(buf.length);
      await write(buf);
    };
    const sql = chunkSelect(task.database, task.table.table, task.table.columns, task.range);
    // Rows are taken in 'data' events, not an async iterator: millions of rows, each a
    // promise round trip there, cost more CPU than the server spends rendering them. The
    // result stream is paused while a batch waits for the rate limit or the compressor.
    const rowsStream = conn.core.query({ sql, rowsAsArray: true }).stream({ highWaterMark: 4096 });
    await new Promise<void>((resolve, reject) => {
      let waiting = 0;
      let ended = false;
      const settle = () => {
        if (ended && waiting === 0) flush().then(resolve, reject);
      };
      rowsStream.on('data', (row: unknown[]) => {
        const value = row[0];
        const buf = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'latin1');
        if (parts.length > 0) parts.push(COMMA);
        parts.push(buf);
        batch += buf.length + 1;
        rows += 1;
        progress.rows += 1;
        if (batch < BATCH_BYTES) return;
        rowsStream.pause();
        waiting += 1;
        flush().then(
          () => {
            waiting -= 1;
            rowsStream.resume();
            settle();
          },
          (error: unknown) => {
            rowsStream.destroy();
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      });
      rowsStream.on('error', reject);
      rowsStream.on('end', () => {
        ended = true;
        settle();
      });
    });
    codec.input.end();
    await Promise.all([stored, codec.done, tester?.done]);
  } catch (error) {
    kill();
    if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'dump cancelled', type: 'Cancelled' });
    throw error;
  } finally {
    req.signal?.removeEventListener('abort', abort);
  }
  return {
    artifact: { name: task.artifact, compression: req.compression, size, sha256: storedHash.digest('hex'), rawSize, rawSha256: rawHash.digest('hex') },
    rows,
  };
}

/** Key bounds of the splittable tables, read inside the snapshot (so the ranges cover it exactly). */
async function planTasks(conn: Connection, tables: TableInfo[], req: ParallelDumpRequest): Promise<ChunkTask[]> {
  const ext = EXTENSIONS[req.compression];
  const dbIndex = new Map(req.databases.map((d, i) => [d, i]));
  const tasks: ChunkTask[] = [];
  for (const [t, table] of tables.entries()) {
    let key: { column: string; min: bigint; max: bigint } | null = null;
    if (table.key && table.rows > req.chunkRows) {
      const k = quoteName(table.key);
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT CAST(MIN(${k}) AS CHAR) AS lo, CAST(MAX(${k}) AS CHAR) AS hi FROM ${quoteName(table.database)}.${quoteName(table.table)}`);
      const bound = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('latin1') : v);
      const min = bound(rows[0]?.lo);
      const max = bound(rows[0]?.hi);
      if (min !== null && min !== undefined && max !== null && max !== undefined) key = { column: table.key, min: BigInt(String(min)), max: BigInt(String(max)) };
    }
    const ranges = planChunks({ rows: table.rows, key }, req.chunkRows);
    ranges.forEach((range, n) => tasks.push({ database: table.database, table, range, artifact: chunkArtifactName(dbIndex.get(table.database) ?? 0, t, n, ext) }));
  }
  // Biggest tables first, so the sessions are not left waiting on one big table at the end.
  return tasks.sort((a, b) => b.table.rows - a.table.rows);
}

async function schemaArtifact(req: ParallelDumpRequest, kind: 'schema' | 'triggers', progress: ParallelDumpProgress): Promise<{ artifact: Artifact; facts: DumpFacts }> {
  const tool = await findTool(dumpToolName(req.cluster, req.product));
  const name = `${kind}.sql${EXTENSIONS[req.compression]}`;
  const what = kind === 'schema' ? ['--no-data', '--skip-triggers', '--routines', '--events'] : ['--no-data', '--no-create-info', '--triggers'];
  const args = ['--single-transaction', '--skip-lock-tables', '--default-character-set=utf8mb4', ...what, ...(req.product === 'mysql' ? ['--set-gtid-purged=OFF'] : []), '--databases', ...req.databases];
  const part: DumpProgress = { phase: 'dump', rawBytes: 0, storedBytes: 0 };
  const stored = await withDefaultsFile(req.cluster, (file) => writeCompressedDump({ ...req, gtid: false, onProgress: undefined }, tool, [`--defaults-extra-file=${file}`, ...args], name, part));
  const { facts, rawSha256, rawSize } = stored;
  if (!facts.completed) throw new Error(`${dumpToolName(req.cluster, req.product)} --no-data output ends without "-- Dump completed": truncated`);
  progress.storedBytes += stored.size;
  return { artifact: { name, compression: req.compression, size: stored.size, sha256: stored.sha256, rawSize, rawSha256 }, facts };
}

export async function runParallelDump(req: ParallelDumpRequest): Promise<ParallelDumpResult> {
  const started = Date.now();
  const threads = Math.max(1, Math.min(64, req.threads));
  const toolName = dumpToolName(req.cluster, req.product);
  const version = await toolVersion(await findTool(toolName));
  const progress: ParallelDumpProgress = { phase: 'dump', rawBytes: 0, storedBytes: 0, chunksDone: 0, chunks: 0, rows: 0 };
  const sessions: Session[] = [];
  let closeGuard: () => Promise<void> = async () => undefined;
  const ticker = setInterval(() => req.onProgress?.(progress), 1000);
  try {
    for (let i = 0; i < threads; i++) sessions.push(await openSession(req.cluster));
    const tables = await describeTables(sessions[0]!, req.databases);
    const snap = await openSnapshots(req, sessions);
    closeGuard = snap.close;
    const tasks = await planTasks(sessions[0]!, tables, req);
    progress.chunks = tasks.length;
    const limit = new RateLimit(req.maxBytesPerSecond);
    const done: Array<{ task: ChunkTask; artifact: Artifact; rows: number }> = [];
    let next = 0;
    let failed: unknown = null;
    await Promise.all(
      sessions.map(async (conn) => {
        while (failed === null && next < tasks.length) {
          const task = tasks[next++]!;
          try {
            const r = await writeChunk(conn, task, req, limit, progress);
            done.push({ task, ...r });
            progress.chunksDone += 1;
          } catch (error) {
            failed ??= error;
          }
        }
        // This session's snapshot is no longer needed: let the server purge behind it.
        await conn.query('COMMIT').catch(() => undefined);
      }),
    );
    if (failed !== null) throw failed;
    // The schema after the rows, while the MySQL guard still blocks DDL: it describes the tables the rows came from.
    const schema = await schemaArtifact(req, 'schema', progress);
    const triggers = await schemaArtifact(req, 'triggers', progress);
    await closeGuard();
    closeGuard = async () => undefined;
    done.sort((a, b) => (a.task.artifact < b.task.artifact ? -1 : 1));
    const chunks: Chunk[] = done.map((d) => ({ database: d.task.database, table: d.task.table.table, artifact: d.task.artifact, rows: d.rows, range: d.task.range }));
    const facts: DumpFacts = {
      ...schema.facts,
      binlogFile: snap.position.file,
      binlogPosition: snap.position.position,
      gtidSet: snap.position.gtidSet,
      tables: tableRows(chunks),
    };
    req.onProgress?.(progress);
    return {
      artifacts: [schema.artifact, ...done.map((d) => d.artifact), triggers.artifact],
      layout: { schema: schema.artifact.name, triggers: triggers.artifact.name, threads, chunks },
      facts,
      tool: { name: 'dbops-parallel', version: `${toolName}: ${version}` },
      durationMs: Date.now() - started,
      consistency: { method: snap.method, heldMs: snap.heldMs },
    };
  } catch (error) {
    if (error instanceof ApplicationFailure) throw error;
    throw toFailure(error, req.cluster.name);
  } finally {
    clearInterval(ticker);
    await closeGuard().catch(() => undefined);
    await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
  }
}
