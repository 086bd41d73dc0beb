/**
 * Logical full backups with mysqldump / mariadb-dump, streamed: dump -> scanner (position,
 * tables, row counts) + sha256 of the raw stream -> compressor -> sha256 of the stored bytes
 * -> the staging file. No uncompressed copy touches the disk.
 */
import { Failure } from '../domain/failures';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterConfig } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { DumpScanner, type DumpFacts } from '../domain/dumpScanner';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import type { Artifact, Compression, Product } from '../domain/manifest';
import { decompressor, EXTENSIONS } from '../tools/compression';
import { prepareCompressedWrite } from '../repository/compressedWrite';
import { classifyToolStderr } from './errors';
import { openMysqlDumpGuard } from './dumpGuard';
import { execa } from '../tools/execa';
import { childEnv, findTool } from '../tools/tools';

/** Option-file value quoting: backslash and double quote are the only escapes needed. */
function optionValue(value: string): string {
  return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/**
 * Credentials reach client tools through a 0600 file in a private 0700 folder, never argv
 * or the environment (both visible to other local users). The folder is removed after use.
 */
export async function withDefaultsFile<T>(cluster: ClusterConfig, fn: (file: string) => Promise<T>, credentials?: { user: string; password: string }): Promise<T> {
  // The pid in the name lets the worker sweep folders a killed process left behind.
  const dir = await mkdtemp(path.join(tmpdir(), `dbops-cred-${process.pid}-`));
  const file = path.join(dir, 'client.cnf');
  const lines = ['[client]', `user=${optionValue(credentials?.user ?? cluster.user)}`];
  if (credentials) lines.push(`password=${optionValue(credentials.password)}`);
  else if (cluster.password) lines.push(`password=${optionValue(resolveSecret(cluster.password, `clusters.${cluster.name}.password`))}`);
  if (cluster.socket) lines.push(`socket=${optionValue(cluster.socket)}`);
  else lines.push(`host=${optionValue(cluster.host ?? '127.0.0.1')}`, `port=${cluster.port}`, 'protocol=TCP');
  try {
    await writeFile(file, lines.join('\n') + '\n', { mode: 0o600 });
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function dumpToolName(cluster: ClusterConfig, product: Product): string {
  return cluster.tools.dump ?? (product === 'mariadb' ? 'mariadb-dump' : 'mysqldump');
}

/** The dump command line, without credentials (they come from the defaults file). */
export function dumpArguments(product: Product, databases: string[], options: { gtid: boolean; schemaOnly?: boolean }): string[] {
  const common = [
    '--single-transaction',
    '--quick',
    '--routines',
    '--events',
    '--triggers',
    '--hex-blob',
    '--default-character-set=utf8mb4',
  ];
  const position =
    product === 'mariadb'
      ? ['--master-data=2', '--gtid']
      : // The position and GTID set come from the dump guard (mysqldump's own would FLUSH TABLES).
        ['--set-gtid-purged=OFF'];
  return [...common, ...position, ...(options.schemaOnly ? ['--no-data'] : []), '--databases', ...databases];
}

export interface DumpProgress {
  /** The dump is scanned, hashed and compressed in one pass. */
  phase: 'dump';
  rawBytes: number;
  storedBytes: number;
}

export interface DumpResult {
  artifact: Artifact;
  facts: DumpFacts;
  tool: { name: string; version: string };
  durationMs: number;
}

export interface DumpRequest {
  cluster: ClusterConfig;
  product: Product;
  databases: string[];
  gtid: boolean;
  /** Schema backup: routines, events, triggers, views and tables, no rows. */
  schemaOnly?: boolean;
  compression: Compression;
  compressionLevel?: number;
  /** Where the artifact goes: the repository's storage and the backup's staging folder. */
  storage: Storage;
  stagingKey: string;
  /** Raw bytes per second the dump may be read at (default: no limit). */
  maxBytesPerSecond?: number | null;
  /** zstd -t over the stored bytes as they are written (default on: nothing else decompresses a dump before it is published). */
  testFrames?: boolean;
  onProgress?: (progress: DumpProgress) => void;
  signal?: AbortSignal;
}

export async function toolVersion(tool: string): Promise<string> {
  const result = await execa(tool, ['--version'], { reject: false, env: childEnv(), extendEnv: false });
  return (result.stdout || result.stderr).trim().split('\n')[0] ?? 'unknown';
}

/** What one pass over a dump learned: the stored artifact's hash and size, and the raw stream's. */
export interface WrittenDump {
  sha256: string;
  size: number;
  rawSha256: string;
  rawSize: number;
  facts: DumpFacts;
}

/**
 * One pass: the dump tool's stdout flows through the scanner (snapshot position, GTID,
 * tables, exact row counts) and a sha256 of the raw bytes on its way into zstd; zstd's
 * output is hashed and counted on its way to the staging file. What the manifest says of
 * the raw dump is thus read from the very bytes that were compressed, in the same pass,
 * as pgBackRest checksums a file while copying it; nothing is read back. (gzip is Node's
 * zlib, fed the same way.)
 */
export async function writeCompressedDump(req: DumpRequest, tool: string, args: string[], name: string, progress: DumpProgress): Promise<WrittenDump> {
  const scanner = new DumpScanner();
  const writer = await prepareCompressedWrite(
    { ...req, maxBytesPerSecond: req.maxBytesPerSecond ?? null, testFrames: req.testFrames ?? true },
    name,
    progress,
    (chunk) => scanner.push(chunk),
  );
  // Nothing is awaited from here until its stdout is piped (see prepareCompressedWrite).
  const dump = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  const write = writer.start(dump.stdout);
  let dumpStderr = '';
  dump.stderr.on('data', (d: Buffer) => (dumpStderr = (dumpStderr + d.toString()).slice(-64 * 1024)));
  const dumpExit = new Promise<number | string>((resolve) => {
    dump.on('error', (e) => resolve(e.message));
    dump.on('close', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const abort = () => {
    dump.kill('SIGKILL');
    write.kill();
  };
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    const [exit, written] = await Promise.allSettled([dumpExit, write.done]);
    if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'dump cancelled', type: 'Cancelled' });
    const code = exit.status === 'fulfilled' ? exit.value : 'unknown';
    if (code !== 0) {
      const classified = classifyToolStderr(dumpStderr, req.cluster.name);
      if (classified) throw classified;
      throw new Error(`${path.basename(tool)} failed (exit ${code}): ${dumpStderr.trim().split('\n').slice(-3).join(' ')}`);
    }
    if (written.status === 'rejected') throw written.reason instanceof Error ? written.reason : new Error(String(written.reason));
  } finally {
    req.signal?.removeEventListener('abort', abort);
    abort();
  }
  const { artifact } = write;
  return { sha256: artifact.sha256, size: artifact.size, rawSha256: artifact.rawSha256, rawSize: artifact.rawSize, facts: scanner.finish() };
}

/** The dump's lines about replication coordinates, for an error message. */
async function positionLines(storage: Storage, file: string, compression: Compression): Promise<string> {
  const found: string[] = [];
  let rest = '';
  await readDecompressed(storage, file, compression, (chunk) => {
    const lines = (rest + chunk.toString('latin1')).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (found.length < 8 && /MASTER_LOG|SOURCE_LOG|gtid_slave_pos|GTID_PURGED|binlog/i.test(line)) found.push(line.trim());
  });
  return found.join(' | ');
}

/** Streams a stored artifact, decompressed, chunk by chunk. */
async function readDecompressed(storage: Storage, file: string, compression: Compression, onChunk: (chunk: Buffer) => void): Promise<void> {
  const source = await storage.openRead(file); // before the codec starts, so a failure leaves no decompressor behind
  const codec = await decompressor(compression);
  await Promise.all([
    pipeline(source, codec.input),
    pipeline(
      codec.output,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          onChunk(chunk);
          cb();
        },
      }),
    ),
    codec.done,
  ]);
}

export async function runDump(req: DumpRequest): Promise<DumpResult> {
  const started = Date.now();
  const toolName = dumpToolName(req.cluster, req.product);
  const tool = await findTool(toolName);
  const version = await toolVersion(tool);
  const name = `${req.schemaOnly ? 'schema' : 'dump'}.sql${EXTENSIONS[req.compression]}`;
  const target = layout.artifact(req.stagingKey, name);
  const progress: DumpProgress = { phase: 'dump', rawBytes: 0, storedBytes: 0 };
  // MySQL: the snapshot's position comes from the guard, and mysqldump never flushes tables.
  const guard = req.product === 'mysql' ? await openMysqlDumpGuard(req.cluster, req.databases) : null;
  const ticker = setInterval(() => req.onProgress?.(progress), 1000);
  try {
    const args = dumpArguments(req.product, req.databases, { gtid: req.gtid, schemaOnly: req.schemaOnly ?? false });
    const stored = await withDefaultsFile(req.cluster, async (defaultsFile) => {
      const stop = new AbortController();
      const signal = req.signal ? AbortSignal.any([req.signal, stop.signal]) : stop.signal;
      const dump = writeCompressedDump({ ...req, signal }, tool, [`--defaults-extra-file=${defaultsFile}`, ...args], name, progress);
      const released = guard
        ? guard.releaseAfterSnapshot(dump).catch((error: unknown) => {
            stop.abort();
            throw error;
          })
        : Promise.resolve();
      const [dumped, guarded] = await Promise.allSettled([dump, released]);
      if (guarded.status === 'rejected') throw guarded.reason;
      if (dumped.status === 'rejected') throw dumped.reason;
      return dumped.value;
    });
    const { facts, rawSha256, rawSize } = stored;
    if (!facts.completed) {
      throw new Error(`${toolName} output ends without "-- Dump completed": the dump is truncated`);
    }
    if (guard) {
      facts.binlogFile = guard.position.file;
      facts.binlogPosition = guard.position.position;
      facts.gtidSet = guard.position.gtidSet;
    }
    if (facts.binlogFile === null && !req.schemaOnly) {
      // The workflow checked log_bin before dumping, so this is not configuration: retry
      // (a fresh dump), and say what the dump did write about its position.
      const said = await positionLines(req.storage, target, req.compression);
      throw ApplicationFailure.retryable(
        `cluster ${req.cluster.name}: the dump carries no binlog position (log_bin is on); the dump said: ${said || 'nothing about a position'}`,
        Failure.DumpPositionMissing,
      );
    }
    req.onProgress?.(progress);
    return {
      artifact: { name, compression: req.compression, size: stored.size, sha256: stored.sha256, rawSize, rawSha256 },
      facts,
      tool: { name: toolName, version },
      durationMs: Date.now() - started,
    };
  } finally {
    clearInterval(ticker);
    await guard?.close();
  }
}
