/**
 * The continuous binlog stream: the standard tool (`mysqlbinlog` / `mariadb-binlog`
 * `--read-from-remote-server --raw --stop-never`) writes the server's binlog files into a
 * private folder as the server writes them; we walk each file as it grows, cut it between
 * transactions, and publish each cut as a compressed, checksummed segment within a bounded
 * delay (or size), the record written last. A closed file's local copy is removed once it
 * is published.
 *
 * Resuming: a run starts the tool at the beginning of the file it resumes in and walks the
 * bytes an earlier run published without publishing them again, so a restart can neither
 * leave a hole nor publish an event twice; the resume point must fall on a transaction
 * boundary of the file, or the archive and the server disagree (a gap).
 *
 * Coverage: about once a second the server is asked where it writes; once the published
 * end passes that position, every transaction committed before the question is archived.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClusterConfig } from '../config/schema';
import { advanceCoverage, SegmentCutter, type PositionSample, type Segment } from '../domain/binlogArchive';
import { nextBinlogName } from '../domain/chain';
import type { Compression, Product } from '../domain/manifest';
import type { BinlogArchive } from '../repository/binlogArchive';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import { compressor, EXTENSIONS } from '../tools/compression';
import { execa } from '../tools/execa';
import { childEnv, findTool } from '../tools/tools';
import { binlogToolName } from './binlogCopy';
import { withDefaultsFile } from './dump';
import { classifyToolStderr } from './errors';

export class ArchiveGapError extends Error {}

export interface ArchiverRequest {
  cluster: ClusterConfig;
  product: Product;
  storage: Storage;
  archive: BinlogArchive;
  timeline: string;
  file: string;
  position: number;
  compression: Compression;
  compressionLevel?: number;
  /** The replica server id the stream connects with (unique among the server's replicas). */
  connectionServerId: number;
  flushMs: number;
  flushBytes: number;
  runForMs: number;
  signal: AbortSignal;
  /** Where the server writes now. */
  sample(): Promise<{ file: string; position: number }>;
  onProgress(p: ArchiverProgress): void;
  now?: () => number;
}

export interface ArchiverProgress {
  timeline: string;
  file: string;
  position: number;
  coveredUntil: string | null;
  segments: number;
  bytes: number;
}

const TICK_MS = 250;
const SAMPLE_MS = 1000;
const STATUS_MS = 5000;
const READ_CHUNK = 4 << 20;

function tap(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      onChunk(chunk);
      cb(null, chunk);
    },
  });
}

/** Compresses [start, end) of the local copy into the repository, then writes its record. */
async function publishSegment(req: ArchiverRequest, local: string, cut: NonNullable<ReturnType<SegmentCutter['take']>>, file: string, coveredUntil: string | null): Promise<Segment> {
  const rawHash = createHash('sha256');
  const storedHash = createHash('sha256');
  let rawSize = 0;
  let storedSize = 0;
  const extension = EXTENSIONS[req.compression];
  const key = layout.archiveSegmentData(req.cluster.name, req.timeline, file, cut.start, cut.end, extension);
  const codec = await compressor(req.compression, req.compressionLevel);
  try {
    const sink = await req.storage.openWrite(key);
    const results = await Promise.allSettled([
      pipeline(
        createReadStream(local, { start: cut.start, end: cut.end - 1 }),
        tap((c) => {
          rawHash.update(c);
          rawSize += c.length;
        }),
        codec.input,
      ),
      pipeline(
        codec.output,
        tap((c) => {
          storedHash.update(c);
          storedSize += c.length;
        }),
        sink.stream,
      ).then(() => sink.done),
      codec.done,
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  } finally {
    codec.kill();
  }
  if (rawSize !== cut.end - cut.start) throw new Error(`${file}: read ${rawSize} bytes of [${cut.start}, ${cut.end}) from the local copy`);
  const segment: Segment = {
    formatVersion: 1,
    timeline: req.timeline,
    file,
    start: cut.start,
    end: cut.end,
    closed: cut.closed,
    artifact: { name: path.posix.basename(key), compression: req.compression, size: storedSize, sha256: storedHash.digest('hex'), rawSize, rawSha256: rawHash.digest('hex') },
    ...cut.facts,
    coveredUntil,
    publishedAt: new Date().toISOString(),
  };
  await req.archive.writeSegment(segment);
  return segment;
}

export async function runArchiver(req: ArchiverRequest): Promise<ArchiverProgress> {
  const now = req.now ?? Date.now;
  const toolName = binlogToolName(req.cluster, req.product);
  const tool = await findTool(toolName);
  const work = await mkdtemp(path.join(tmpdir(), `dbops-binlog-archive-${process.pid}-`));
  const serverIdFlag = req.product === 'mariadb' ? `--stop-never-slave-server-id=${req.connectionServerId}` : `--connection-server-id=${req.connectionServerId}`;
  const progress: ArchiverProgress = { timeline: req.timeline, file: req.file, position: req.position, coveredUntil: null, segments: 0, bytes: 0 };
  const samples: PositionSample[] = [];

  try {
    return await withDefaultsFile(req.cluster, async (defaultsFile) => {
      const stopper = new AbortController();
      const child = execa(tool, [`--defaults-extra-file=${defaultsFile}`, '--read-from-remote-server', '--raw', '--stop-never', serverIdFlag, `--result-file=${work}${path.sep}`, req.file], {
        stdout: 'ignore',
        stderr: 'pipe',
        reject: false,
        env: childEnv(),
        extendEnv: false,
        cancelSignal: stopper.signal,
      });
      let exited: { code: number | undefined; stderr: string } | null = null;
      const watching = child.then((r) => {
        exited = { code: r.exitCode, stderr: String(r.stderr ?? '') };
      });

      let cutter = new SegmentCutter(req.file, req.position);
      let handle: FileHandle | null = null;
      let pendingSince: number | null = null;
      let lastSample = 0;
      let lastStatus = 0;
      let statusWritten = '';
      const started = now();
      const fileSegments: Segment[] = [];
      if (req.position > 0) fileSegments.push(...(await req.archive.segments(req.timeline, req.file)).filter((s) => s.end <= req.position));

      // The bytes a resumed run walks again must be the ones the archive holds: a file that
      // was rewritten (RESET MASTER, a restored server) could line up by chance otherwise.
      const prefix = new PrefixCheck([...fileSegments], req.file);

      /** Reads what the tool has written, up to flushBytes beyond what is published; true when more is waiting. */
      const readNew = async (): Promise<boolean> => {
        const local = path.join(work, cutter.file);
        if (!handle) {
          handle = await open(local, 'r').catch(() => null);
          if (!handle) return false;
        }
        const size = (await handle.stat()).size;
        const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(0, size - cutter.walked)));
        while (cutter.walked < size) {
          const at = cutter.walked;
          const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - cutter.walked), cutter.walked);
          if (bytesRead === 0) break;
          const chunk = buffer.subarray(0, bytesRead);
          if (cutter.file === req.file && at < req.position) prefix.push(at, chunk);
          cutter.push(chunk);
          if (cutter.safeEnd - cutter.publishedEnd >= req.flushBytes) break;
        }
        if (cutter.misaligned) {
          throw new ArchiveGapError(`${cutter.file} has no transaction boundary at ${req.position}, where the archive ends: the server's file is not the one archived`);
        }
        const differs = prefix.mismatch();
        if (differs) throw new ArchiveGapError(`${cutter.file}: ${differs}: the server's file is not the one archived (RESET MASTER or a restored server?)`);
        // The server crashed without closing this file and the tool has moved on to the next one: it is complete as it is.
        if (cutter.walked === size && !cutter.closed && (await exists(path.join(work, nextBinlogName(cutter.file))))) cutter.endedWithoutRotate();
        return cutter.walked < size;
      };

      const publish = async (force: boolean): Promise<void> => {
        if (cutter.safeEnd > cutter.publishedEnd) pendingSince ??= now();
        else pendingSince = null;
        if (pendingSince === null) return;
        const due = force || cutter.closed || cutter.safeEnd - cutter.publishedEnd >= req.flushBytes || now() - pendingSince >= req.flushMs;
        if (!due) return;
        const file = cutter.file;
        const covered = advanceCoverage(samples, { file, position: cutter.safeEnd });
        if (covered) progress.coveredUntil = covered;
        const cut = cutter.take();
        if (!cut) return;
        const segment = await publishSegment(req, path.join(work, file), cut, file, progress.coveredUntil);
        fileSegments.push(segment);
        pendingSince = null;
        progress.segments += 1;
        progress.bytes += segment.artifact.rawSize;
        progress.file = file;
        progress.position = cut.end;
        if (cut.closed) {
          await req.archive.writeClosedFile(req.timeline, file, fileSegments);
          fileSegments.length = 0;
          await (handle as FileHandle | null)?.close();
          handle = null;
          await rm(path.join(work, file), { force: true });
          cutter = new SegmentCutter(nextBinlogName(file), 0);
          progress.file = cutter.file;
          progress.position = 0;
        }
      };

      const writeStatus = async (force: boolean): Promise<void> => {
        const covered = advanceCoverage(samples, { file: progress.file, position: progress.position });
        if (covered) progress.coveredUntil = covered;
        const key = `${progress.file}:${progress.position}:${progress.coveredUntil}`;
        if (!force && (key === statusWritten || now() - lastStatus < STATUS_MS)) return;
        await req.archive.writeStatus({ formatVersion: 1, timeline: req.timeline, file: progress.file, position: progress.position, coveredUntil: progress.coveredUntil, updatedAt: new Date(now()).toISOString() });
        statusWritten = key;
        lastStatus = now();
      };

      try {
        for (;;) {
          // Cancelled (a pause, a stop, or Temporal gave up on this attempt and another may be
          // running): stop at once and publish nothing more; the next run reads the rest again.
          if (req.signal.aborted) return { ...progress };
          const stopping = now() - started >= req.runForMs;
          if (!stopping && now() - lastSample >= SAMPLE_MS) {
            const at = new Date(now()).toISOString();
            lastSample = now();
            try {
              const p = await req.sample();
              samples.push({ ...p, at });
              if (samples.length > 600) samples.shift();
            } catch {
              // The stream itself says when the server is gone; a missed sample only delays coverage.
            }
          }
          // Read what there is, publish what is due, and move on to the next file while the tool
          // is ahead; heartbeat all along, so a long catch-up is never taken for a dead worker.
          for (;;) {
            if (req.signal.aborted) return { ...progress };
            const more = await readNew();
            const before = cutter.file;
            await publish(stopping || exited !== null);
            req.onProgress({ ...progress });
            if (cutter.file === before && !more) break;
          }
          await writeStatus(stopping);
          req.onProgress({ ...progress });
          if (stopping) return { ...progress };
          if (exited) {
            const { code, stderr } = exited as { code: number | undefined; stderr: string };
            if (/could not find first log file|purged|binary log index file/i.test(stderr)) {
              throw new ArchiveGapError(`${toolName} cannot read ${cutter.file} from the server: ${stderr.trim().split('\n').slice(-1)[0]}`);
            }
            const classified = classifyToolStderr(stderr, req.cluster.name);
            if (classified) throw classified;
            throw new Error(`${toolName} stopped streaming (exit ${code ?? '?'}): ${stderr.trim().split('\n').slice(-2).join(' ')}`);
          }
          await new Promise((r) => setTimeout(r, TICK_MS));
        }
      } finally {
        stopper.abort();
        await watching.catch(() => undefined);
        await (handle as FileHandle | null)?.close().catch(() => undefined);
      }
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Compares the bytes a resumed run walks again with the sha256 of each segment published of them. */
class PrefixCheck {
  private index = 0;
  private hash = createHash('sha256');
  private problem: string | null = null;

  constructor(private readonly segments: readonly Segment[], private readonly file: string) {}

  push(at: number, chunk: Buffer): void {
    let offset = at;
    let rest = chunk;
    while (rest.length > 0 && this.problem === null) {
      const s = this.segments[this.index];
      if (!s) return;
      const take = Math.min(rest.length, s.end - offset);
      if (take <= 0) return;
      this.hash.update(rest.subarray(0, take));
      offset += take;
      rest = rest.subarray(take);
      if (offset === s.end) {
        if (this.hash.digest('hex') !== s.artifact.rawSha256) this.problem = `bytes [${s.start}, ${s.end}) of ${this.file} differ from the archived segment`;
        this.hash = createHash('sha256');
        this.index += 1;
      }
    }
  }

  mismatch(): string | null {
    return this.problem;
  }
}

/** A default replica id for the stream: stable per cluster, high enough to stay clear of real replicas. */
export function defaultConnectionServerId(cluster: string): number {
  let h = 2166136261;
  for (const ch of cluster) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return 4_000_000_000 + (h % 200_000_000);
}

