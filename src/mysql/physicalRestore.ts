/**
 * A physical full back to a datadir: the artifact streamed out of the repository,
 * decompressed and unpacked (mbstream -x / tar -x) into an empty folder, its raw sha256
 * checked against the manifest's on the way, then made startable (MariaDB: mariadb-backup
 * --prepare applies the redo the copy caught; MySQL's clone is consistent as it is). The
 * copy's server identity files go, so the restored server never poses as the source.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../domain/failures';
import type { PhysicalFormat } from '../domain/physical';
import type { RestorePlan } from '../domain/restorePlan';
import { SealError } from '../repository/crypto';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import { compressionOf, decompressor } from '../tools/compression';
import { childEnv, findTool } from '../tools/tools';

export interface PhysicalSource {
  /** The full backup's folder in the repository, and its id (for messages). */
  fullId: string;
  fullPath: string;
  format: PhysicalFormat;
  artifact: string;
  rawSha256: string;
  rawSize: number;
  /** Physical incrementals prepared onto the full, in order (MariaDB). */
  deltas?: Array<{ id: string; path: string; artifact: string; rawSha256: string; rawSize: number }>;
}

/** What restoring a plan's physical full needs (null: the plan starts from a logical full). */
export function physicalSourceOf(full: RestorePlan['full']): PhysicalSource | null {
  if (!full.physical) return null;
  const p = full.physical;
  return { fullId: full.id, fullPath: full.path, format: p.format, artifact: p.artifact, rawSha256: p.rawSha256, rawSize: p.rawSize, ...(p.deltas?.length ? { deltas: p.deltas } : {}) };
}

export interface PhysicalRestoreRequest {
  source: PhysicalSource;
  storage: Storage;
  /** An absent or empty folder: the datadir to be. */
  datadir: string;
  /** MariaDB's prepare tool (default mariadb-backup). */
  prepareTool?: string;
  onProgress?: (p: { phase: string; bytes: number }) => void;
  signal?: AbortSignal;
}

export interface PhysicalRestoreResult {
  rawBytes: number;
  durationMs: { unpack: number; prepare: number };
}

function run(command: string, args: string[], signal?: AbortSignal): Promise<{ code: number | string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv() });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-64 * 1024)));
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (e) => resolve({ code: e.message, stderr }));
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', abort);
      resolve({ code: code ?? sig ?? -1, stderr });
    });
  });
}

/** Files a copy brings along that belong to the source server, not to a restored one. */
const SOURCE_IDENTITY = ['auto.cnf', 'mysqld-auto.cnf'];

/** One artifact, streamed out of the repository, decompressed, its raw sha256 checked, unpacked into `dir`. */
async function unpackArtifact(
  req: PhysicalRestoreRequest,
  what: { id: string; path: string; artifact: string; rawSha256: string; rawSize: number },
  dir: string,
  onBytes: (n: number) => void,
): Promise<number> {
  const unpacker =
    req.source.format === 'xbstream'
      ? { tool: await findTool('mbstream'), args: ['-x', '-C', dir] }
      : { tool: await findTool('tar'), args: ['--extract', '--file=-', `--directory=${dir}`, '--no-same-owner'] };
  const input = await req.storage.openRead(layout.artifact(what.path, what.artifact));
  const codec = await decompressor(compressionOf(what.artifact));
  const child = spawn(unpacker.tool, unpacker.args, { stdio: ['pipe', 'ignore', 'pipe'], env: childEnv() });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-64 * 1024)));
  const unpacked = new Promise<number | string>((resolve) => {
    child.on('error', (e) => resolve(e.message));
    child.on('close', (code, sig) => resolve(code ?? sig ?? -1));
  });
  const hash = createHash('sha256');
  let rawBytes = 0;
  const abort = () => {
    codec.kill();
    child.kill('SIGKILL');
  };
  req.signal?.addEventListener('abort', abort, { once: true });
  try {
    const [fed, piped, decoded, code] = await Promise.allSettled([
      pipeline(input, codec.input),
      pipeline(
        codec.output as Readable,
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            hash.update(chunk);
            rawBytes += chunk.length;
            onBytes(chunk.length);
            cb(null, chunk);
          },
        }),
        child.stdin,
      ),
      codec.done,
      unpacked,
    ]);
    if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'physical restore cancelled', type: 'Cancelled' });
    if (fed.status === 'rejected' && fed.reason instanceof SealError) throw fed.reason;
    if (decoded.status === 'rejected') throw new Error(`${what.id}/${what.artifact}: ${(decoded.reason as Error)?.message ?? String(decoded.reason)}`);
    const exit = code.status === 'fulfilled' ? code.value : String(code.reason);
    if (exit !== 0) throw new Error(`unpacking ${what.id}/${what.artifact} (${path.basename(unpacker.tool)}) failed (exit ${exit}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
    for (const x of [fed, piped]) if (x.status === 'rejected') throw x.reason instanceof Error ? x.reason : new Error(String(x.reason));
  } finally {
    req.signal?.removeEventListener('abort', abort);
  }
  const sha = hash.digest('hex');
  if (sha !== what.rawSha256 || rawBytes !== what.rawSize) {
    throw ApplicationFailure.nonRetryable(
      `${what.id}/${what.artifact} does not match its manifest (${rawBytes} bytes, sha256 ${sha.slice(0, 12)}…; the manifest says ${what.rawSize} bytes, ${what.rawSha256.slice(0, 12)}…)`,
      Failure.ArtifactCorrupt,
    );
  }
  return rawBytes;
}

async function prepare(req: PhysicalRestoreRequest, id: string, incrementalDir: string | null): Promise<void> {
  const tool = await findTool(req.prepareTool ?? 'mariadb-backup');
  const r = await run(tool, ['--prepare', `--target-dir=${req.datadir}`, ...(incrementalDir ? [`--incremental-dir=${incrementalDir}`] : []), '--use-memory=256M'], req.signal);
  if (r.code !== 0 || !/completed OK!/.test(r.stderr)) {
    throw new Error(`mariadb-backup --prepare of ${id} failed (exit ${r.code}): ${r.stderr.trim().split('\n').filter((l) => !/\[Note\]/.test(l)).slice(-3).join(' ')}`);
  }
}

export async function restorePhysicalFiles(req: PhysicalRestoreRequest): Promise<PhysicalRestoreResult> {
  const { source } = req;
  if (existsSync(req.datadir) && readdirSync(req.datadir).length > 0) {
    throw ApplicationFailure.nonRetryable(`${req.datadir} is not empty: a physical restore unpacks into an empty folder`, Failure.InvalidInput);
  }
  const deltas = source.deltas ?? [];
  if (deltas.length > 0 && source.format !== 'xbstream') throw ApplicationFailure.nonRetryable(`only mariadb-backup copies have incrementals; ${source.fullId} is ${source.format}`, Failure.InvalidInput);
  await mkdir(req.datadir, { recursive: true, mode: 0o700 });
  const started = Date.now();
  let rawBytes = 0;
  let lastReport = 0;
  const onBytes = (n: number): void => {
    rawBytes += n;
    if (rawBytes - lastReport > 16 * 1024 * 1024) {
      lastReport = rawBytes;
      req.onProgress?.({ phase: 'unpack', bytes: rawBytes });
    }
  };
  await unpackArtifact(req, { id: source.fullId, path: source.fullPath, artifact: source.artifact, rawSha256: source.rawSha256, rawSize: source.rawSize }, req.datadir, onBytes);
  let unpack = Date.now() - started;
  let preparing = 0;
  if (source.format === 'xbstream') {
    req.onProgress?.({ phase: 'prepare', bytes: rawBytes });
    let t = Date.now();
    await prepare(req, source.fullId, null);
    preparing += Date.now() - t;
    // Each incremental: unpacked next to the datadir, applied onto it, removed.
    for (const d of deltas) {
      const dir = `${req.datadir}.incremental`;
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o700 });
      try {
        t = Date.now();
        await unpackArtifact(req, d, dir, onBytes);
        unpack += Date.now() - t;
        req.onProgress?.({ phase: `prepare ${d.id}`, bytes: rawBytes });
        t = Date.now();
        await prepare(req, d.id, dir);
        preparing += Date.now() - t;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  for (const f of SOURCE_IDENTITY) await rm(path.join(req.datadir, f), { force: true });
  return { rawBytes, durationMs: { unpack, prepare: preparing } };
}
