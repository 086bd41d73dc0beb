/**
 * Logical full backups with mysqldump / mariadb-dump, streamed: dump -> scanner (position,
 * tables, row counts) + sha256 of the raw stream -> compressor -> sha256 of the stored bytes
 * -> the staging file. No uncompressed copy touches the disk.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterConfig } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { DumpScanner, type DumpFacts } from '../domain/dumpScanner';
import type { Artifact, Compression, Product } from '../domain/manifest';
import { compressor, EXTENSIONS } from './compression';
import { classifyToolStderr } from './errors';
import { execa } from './execa';
import { findTool } from './tools';

/** Option-file value quoting: backslash and double quote are the only escapes needed. */
function optionValue(value: string): string {
  return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/**
 * Credentials reach client tools through a 0600 file in a private 0700 folder, never argv
 * or the environment (both visible to other local users). The folder is removed after use.
 */
export async function withDefaultsFile<T>(cluster: ClusterConfig, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dbops-cred-'));
  const file = path.join(dir, 'client.cnf');
  const lines = ['[client]', `user=${optionValue(cluster.user)}`];
  if (cluster.password) lines.push(`password=${optionValue(resolveSecret(cluster.password, `clusters.${cluster.name}.password`))}`);
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
      : ['--source-data=2', `--set-gtid-purged=${options.gtid ? 'COMMENTED' : 'OFF'}`];
  return [...common, ...position, ...(options.schemaOnly ? ['--no-data'] : []), '--databases', ...databases];
}

export interface DumpProgress {
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
  stagingDir: string;
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
  const result = await execa(tool, ['--version'], { reject: false });
  return (result.stdout || result.stderr).trim().split('\n')[0] ?? 'unknown';
}

export async function runDump(req: DumpRequest): Promise<DumpResult> {
  const started = Date.now();
  const toolName = dumpToolName(req.cluster, req.product);
  const tool = await findTool(toolName);
  const version = await toolVersion(tool);
  const name = `${req.schemaOnly ? 'schema' : 'dump'}.sql${EXTENSIONS[req.compression]}`;
  const target = path.join(req.stagingDir, name);

  return withDefaultsFile(req.cluster, async (defaultsFile) => {
    const scanner = new DumpScanner();
    const rawHash = createHash('sha256');
    const storedHash = createHash('sha256');
    const progress: DumpProgress = { rawBytes: 0, storedBytes: 0 };
    const codec = await compressor(req.compression, req.compressionLevel);

    const dump = execa(tool, [`--defaults-extra-file=${defaultsFile}`, ...dumpArguments(req.product, req.databases, { gtid: req.gtid, schemaOnly: req.schemaOnly ?? false })], {
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: { stdout: false, stderr: true },
      stripFinalNewline: false,
      ...(req.signal ? { cancelSignal: req.signal } : {}),
      reject: false,
    });
    const ticker = setInterval(() => req.onProgress?.(progress), 1000);
    try {
      const produce = pipeline(
        dump.stdout as Readable,
        tap((chunk) => {
          scanner.push(chunk);
          rawHash.update(chunk);
          progress.rawBytes += chunk.length;
        }),
        codec.input,
      );
      const store = pipeline(
        codec.output,
        tap((chunk) => {
          storedHash.update(chunk);
          progress.storedBytes += chunk.length;
        }),
        createWriteStream(target, { mode: 0o640, flush: true }),
      );
      const [dumpResult, ...rest] = await Promise.allSettled([dump, produce, store, codec.done]);
      const result = dumpResult.status === 'fulfilled' ? dumpResult.value : null;
      if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'dump cancelled', type: 'Cancelled' });
      if (!result || result.exitCode !== 0) {
        const stderr = String(result?.stderr ?? '');
        const classified = classifyToolStderr(stderr, req.cluster.name);
        if (classified) throw classified;
        throw new Error(`${toolName} failed (exit ${result?.exitCode ?? '?'}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
      }
      const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    } finally {
      clearInterval(ticker);
      codec.kill();
    }

    const facts = scanner.finish();
    if (!facts.completed) {
      throw new Error(`${toolName} stream ended without "-- Dump completed": the dump is truncated`);
    }
    if (facts.binlogFile === null && !req.schemaOnly) {
      throw ApplicationFailure.nonRetryable(
        `cluster ${req.cluster.name}: the dump carries no binlog position; enable log_bin on the server (point-in-time restore needs it)`,
        'ConfigError',
      );
    }
    req.onProgress?.(progress);
    return {
      artifact: {
        name,
        compression: req.compression,
        size: progress.storedBytes,
        sha256: storedHash.digest('hex'),
        rawSize: progress.rawBytes,
        rawSha256: rawHash.digest('hex'),
      },
      facts,
      tool: { name: toolName, version },
      durationMs: Date.now() - started,
    };
  });
}
