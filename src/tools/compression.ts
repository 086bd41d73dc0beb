/**
 * Streaming compressors and decompressors. zstd is the zstd CLI (multi-threaded, the
 * standard tool); gzip is Node's zlib. Both are plain Duplex-like pairs so that callers
 * can hash and count on either side without an uncompressed temp copy.
 */
import { spawn } from 'node:child_process';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Compression } from '../domain/manifest';
import { childEnv, findTool } from './tools';

export interface Codec {
  input: Writable;
  output: Readable;
  /** Resolves when the codec finished cleanly; rejects with its stderr otherwise. */
  done: Promise<void>;
  kill(): void;
}

export const EXTENSIONS: Record<Compression, string> = { zstd: '.zst', gzip: '.gz', none: '' };

/** The codec of a stored artifact, from its name. */
export function compressionOf(name: string): Compression {
  return name.endsWith('.zst') ? 'zstd' : name.endsWith('.gz') ? 'gzip' : 'none';
}

function zstdProcess(args: string[]): Promise<Codec> {
  return findTool('zstd').then((zstd) => {
    const child = spawn(zstd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const done = new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`zstd ${args.join(' ')} failed (${code ?? signal}): ${stderr.trim()}`)),
      );
    });
    return { input: child.stdin, output: child.stdout, done, kill: () => child.kill('SIGKILL') };
  });
}

function inProcess(stream: PassThrough | ReturnType<typeof createGzip>): Codec {
  const done = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return { input: stream, output: stream, done, kill: () => stream.destroy() };
}

export function compressor(compression: Compression, level?: number): Promise<Codec> {
  switch (compression) {
    case 'zstd':
      return zstdProcess(['-q', '-c', '-T0', `-${Math.min(level ?? 3, 19)}`]);
    case 'gzip':
      return Promise.resolve(inProcess(createGzip({ level: Math.min(level ?? 6, 9) })));
    default:
      return Promise.resolve(inProcess(new PassThrough()));
  }
}

/** `zstd -t`: decompresses and checks the frame checksum, writes nothing (output ends at once). */
export function zstdTest(): Promise<Codec> {
  return zstdProcess(['-q', '-t']);
}

/**
 * zstd -t on a compressed stream as it passes through a pipeline, without a second read.
 *
 * `feed` is a pass-through: it hands each chunk to zstd -t and lets it go on only once zstd
 * -t's input has taken it, so the tester sets the pace (nothing piles up in memory when it
 * is slow) and no chunk goes on that was not offered to it. After the last chunk it ends
 * zstd -t's input and waits until that input has taken everything.
 *
 * `done` resolves only when zstd -t has read every byte that passed and found the stream
 * intact. Otherwise it rejects with zstd's own message and what its input got: how many
 * of the bytes that passed were written to it, and the write error if writing failed.
 * That tells a damaged stream (zstd judged all the bytes) from a broken delivery (it did
 * not get them, and its complaint is about that, not about the data).
 */
export interface StreamTest {
  feed: Transform;
  done: Promise<void>;
  kill(): void;
}

/** Resolves when `stream` can take more, or can take nothing any more (failed, closed). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const settle = (): void => {
      stream.off('drain', settle).off('error', settle).off('close', settle);
      resolve();
    };
    stream.on('drain', settle).on('error', settle).on('close', settle);
  });
}

export async function zstdStreamTest(): Promise<StreamTest> {
  const tester = await zstdTest();
  const input = tester.input;
  let passed = 0;
  let given = 0;
  let ended = false;
  let inputError: Error | null = null;
  // Recorded and reported through `done`, with the verdict.
  input.on('error', (error: Error) => {
    inputError ??= error;
  });
  const broken = (): boolean => inputError !== null || input.destroyed;

  const feed = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      passed += chunk.length;
      // Once the input has failed the test cannot pass; the stream still goes on to its
      // other consumers, and `done` reports the failure.
      if (broken()) return cb(null, chunk);
      const more = input.write(chunk, (error) => {
        if (!error) given += chunk.length;
      });
      if (more) return cb(null, chunk);
      void drained(input).then(() => cb(null, chunk));
    },
    flush(cb) {
      if (broken()) return cb();
      input.end();
      finished(input, { readable: false }).then(
        () => {
          ended = true;
          cb();
        },
        () => cb(),
      );
    },
    destroy(error, cb) {
      // A pipeline that failed never ends the input: close it, so that zstd -t exits instead
      // of waiting for more.
      if (!input.writableFinished) input.destroy();
      cb(error);
    },
  });

  const fed = new Promise<void>((resolve) => feed.once('close', resolve));
  const done = Promise.allSettled([tester.done, fed]).then(([verdict]) => {
    const whole = ended && inputError === null && given === passed;
    if (verdict.status === 'fulfilled' && whole) return;
    const said =
      verdict.status === 'rejected' ? (verdict.reason instanceof Error ? verdict.reason.message : String(verdict.reason)) : 'zstd -t passed what it read';
    const delivery = inputError ? `, then writing to it failed: ${inputError.message}` : ended ? '' : ', and its input closed before the end of the stream';
    throw new Error(`${said} (zstd -t was given ${given} of the ${passed} compressed bytes${delivery})`);
  });
  return { feed, done, kill: tester.kill };
}

export function decompressor(compression: Compression): Promise<Codec> {
  switch (compression) {
    case 'zstd':
      return zstdProcess(['-q', '-d', '-c']);
    case 'gzip':
      return Promise.resolve(inProcess(createGunzip()));
    default:
      return Promise.resolve(inProcess(new PassThrough()));
  }
}
