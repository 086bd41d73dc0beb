/**
 * One raw stream into one compressed artifact in the repository, in a single pass: the raw
 * bytes are hashed, counted, paced (the cluster's MiB/s cap) and handed to the compressor;
 * the compressed bytes are hashed, counted, test-decompressed as they go (zstd -t, when
 * asked) and written to staging. Every writer of a one-stream artifact (a logical dump, a
 * physical copy) uses this, so they hash, pace and test the same way.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Artifact, Compression } from '../domain/manifest';
import { compressor, zstdStreamTest } from '../tools/compression';
import { RateLimit } from '../tools/rateLimit';
import { layout } from './layout';
import type { Storage } from './storage';

export interface CompressedWriteRequest {
  compression: Compression;
  compressionLevel?: number;
  /** Raw bytes per second the source may be read at (null: no limit). */
  maxBytesPerSecond: number | null;
  storage: Storage;
  stagingKey: string;
  /** zstd -t over the compressed bytes as they are written (zstd only). */
  testFrames: boolean;
}

export interface WriteProgress {
  rawBytes: number;
  storedBytes: number;
}

export interface CompressedWrite {
  /** Filled in when `done` resolves. */
  artifact: Artifact;
  done: Promise<void>;
  kill(): void;
}

/**
 * Two steps: everything that waits (the codec, the tester, the staging sink) is set up
 * first, and `start` takes the source without waiting on anything. A child's stdout must
 * be piped before the next await: when the child exits, Node drains (drops) whatever of
 * its output nobody reads yet, and a small dump can be over by then. `onRaw` sees every
 * raw chunk before it is compressed (a scanner, say).
 */
export async function prepareCompressedWrite(
  req: CompressedWriteRequest,
  name: string,
  progress: WriteProgress,
  onRaw: (chunk: Buffer) => void = () => undefined,
): Promise<{ start(source: Readable): CompressedWrite }> {
  const codec = await compressor(req.compression, req.compressionLevel);
  const tester = req.testFrames && req.compression === 'zstd' ? await zstdStreamTest().catch((error: unknown) => {
    codec.kill();
    throw error;
  }) : null;
  let sink: Awaited<ReturnType<Storage['openWrite']>>;
  try {
    sink = await req.storage.openWrite(layout.artifact(req.stagingKey, name));
  } catch (error) {
    codec.kill();
    tester?.kill();
    throw error;
  }
  const kill = (): void => {
    codec.kill();
    tester?.kill();
  };
  const start = (source: Readable): CompressedWrite => {
    const rawHash = createHash('sha256');
    const storedHash = createHash('sha256');
    const limit = new RateLimit(req.maxBytesPerSecond);
    const artifact: Artifact = { name, compression: req.compression, size: 0, sha256: '', rawSize: 0, rawSha256: '' };
    const raw = pipeline(
      source,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          onRaw(chunk);
          rawHash.update(chunk);
          artifact.rawSize += chunk.length;
          progress.rawBytes += chunk.length;
          if (req.maxBytesPerSecond === null) cb(null, chunk);
          else limit.take(chunk.length).then(() => cb(null, chunk), cb);
        },
      }),
      codec.input,
    );
    const stored = pipeline(
      codec.output as Readable,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          storedHash.update(chunk);
          artifact.size += chunk.length;
          progress.storedBytes += chunk.length;
          cb(null, chunk);
        },
      }),
      ...(tester ? [tester.feed] : []),
      sink.stream,
    ).then(() => sink.done);
    const done = Promise.all([raw, stored, codec.done, tester?.done]).then(() => {
      artifact.sha256 = storedHash.digest('hex');
      artifact.rawSha256 = rawHash.digest('hex');
    });
    return { artifact, done, kill };
  };
  return { start };
}
