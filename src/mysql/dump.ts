/**
 * Logical full backups with mysqldump / mariadb-dump, streamed: dump -> scanner (position,
 * tables, row counts) + sha256 of the raw stream -> compressor -> sha256 of the stored bytes
 * -> the staging file. No uncompressed copy touches the disk.
 */
import { Failure } from '../domain/failures';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterConfig } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { DumpScanner, type DumpFacts } from '../domain/dumpScanner';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import type { Artifact, Compression, Product } from '../domain/manifest';
import { compressor, decompressor, EXTENSIONS } from '../tools/compression';
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
  /** dump: writing the compressed artifact; verify: reading it back through the scanner. */
  phase: 'dump' | 'verify';
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
  onProgress?: (progress: DumpProgress) => void;
  signal?: AbortSignal;
}

function tap(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onChunk(chunk);
      cb(null, chunk);
    },
  });
}

export async function toolVersion(tool: string): Promise<string> {
  const result = await execa(tool, ['--version'], { reject: false, env: childEnv(), extendEnv: false });
  return (result.stdout || result.stderr).trim().split('\n')[0] ?? 'unknown';
}

/**
 * Phase 1, the dump: mariadb-dump's stdout is handed to zstd as its stdin at the file
 * descriptor level (a shell pipe, the bytes never pass through Node); Node only hashes
 * and counts the compressed stream on its way to the staging file. On a small host the
 * raw stream is the expensive part, so it crosses a process boundary once, as with
 * `mysqldump | zstd`. (gzip is Node's zlib, so there the raw stream does pass through.)
 */
export async function writeCompressedDump(
  req: DumpRequest,
  tool: string,
  args: string[],
  target: string,
  progress: DumpProgress,
): Promise<{ sha256: string; size: number }> {
  const storedHash = createHash('sha256');
  const sink = await req.storage.openWrite(target);
  // Found before the dump starts: nothing may be awaited between spawning the dump and
  // handing its stdout to zstd, or bytes Node read meanwhile would never reach zstd.
  const zstdTool = req.compression === 'zstd' ? await findTool('zstd') : null;
  const dump = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let dumpStderr = '';
  dump.stderr.on('data', (d: Buffer) => (dumpStderr += d.toString()));
  const dumpExit = new Promise<number | string>((resolve) => {
    dump.on('error', (e) => resolve(e.message));
    dump.on('close', (code, signal) => resolve(code ?? signal ?? -1));
  });

  let stored: Readable;
  let codecDone: Promise<void>;
  let kill: () => void;
  if (zstdTool !== null) {
    const zstd = spawn(zstdTool, ['-q', '-c', '-T0', `-${Math.min(req.compressionLevel ?? 3, 19)}`], {
      stdio: [dump.stdout, 'pipe', 'pipe'],
      env: childEnv(),
    });
    dump.stdout.destroy(); // zstd holds the read end now
    let zstdStderr = '';
    zstd.stderr.on('data', (d: Buffer) => (zstdStderr += d.toString()));
    codecDone = new Promise((resolve, reject) => {
      zstd.on('error', reject);
      zstd.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd failed (${code}): ${zstdStderr.trim()}`))));
    });
    stored = zstd.stdout;
    kill = () => zstd.kill('SIGKILL');
  } else {
    const codec = await compressor(req.compression, req.compressionLevel);
    codecDone = Promise.all([pipeline(dump.stdout, codec.input), codec.done]).then(() => undefined);
    stored = codec.output;
    kill = codec.kill;
  }
  const abort = () => {
    dump.kill('SIGKILL');
    kill();
  };
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    const store = pipeline(
      stored,
      tap((chunk) => {
        storedHash.update(chunk);
        progress.storedBytes += chunk.length;
      }),
      sink.stream,
    ).then(() => sink.done);
    const [exit, ...rest] = await Promise.allSettled([dumpExit, store, codecDone]);
    if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'dump cancelled', type: 'Cancelled' });
    const code = exit.status === 'fulfilled' ? exit.value : 'unknown';
    if (code !== 0) {
      const classified = classifyToolStderr(dumpStderr, req.cluster.name);
      if (classified) throw classified;
      throw new Error(`${path.basename(tool)} failed (exit ${code}): ${dumpStderr.trim().split('\n').slice(-3).join(' ')}`);
    }
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  } finally {
    req.signal?.removeEventListener('abort', abort);
    kill();
  }
  return { sha256: storedHash.digest('hex'), size: progress.storedBytes };
}

/**
 * Phase 2, the proof: the staged file is read back from disk and decompressed end to end
 * through the dump scanner (snapshot position, GTID, tables, exact row counts) and
 * sha256. What the manifest says of the raw dump is thus read from the artifact itself.
 */
export async function scanStoredDump(
  storage: Storage,
  file: string,
  compression: Compression,
  onBytes: (rawBytes: number) => void = () => undefined,
): Promise<{ facts: DumpFacts; rawSha256: string; rawSize: number }> {
  const scanner = new DumpScanner();
  const rawHash = createHash('sha256');
  let rawSize = 0;
  await readDecompressed(storage, file, compression, (chunk) => {
    scanner.push(chunk);
    rawHash.update(chunk);
    rawSize += chunk.length;
    onBytes(rawSize);
  });
  return { facts: scanner.finish(), rawSha256: rawHash.digest('hex'), rawSize };
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
      const dump = writeCompressedDump({ ...req, signal }, tool, [`--defaults-extra-file=${defaultsFile}`, ...args], target, progress);
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
    progress.phase = 'verify';
    const { facts, rawSha256, rawSize } = await scanStoredDump(req.storage, target, req.compression, (n) => {
      progress.rawBytes = n;
    });
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
