/**
 * Streaming compressors and decompressors. zstd is the zstd CLI (multi-threaded, the
 * standard tool); gzip is Node's zlib. Both are plain Duplex-like pairs so that callers
 * can hash and count on either side without an uncompressed temp copy.
 */
import { spawn } from 'node:child_process';
import { PassThrough, type Readable, type Writable } from 'node:stream';
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
