/**
 * Any storage, with every object sealed on the way in and opened on the way out (see
 * crypto.ts): artifacts, manifests, indexes, reports, claims and locks alike, so the store
 * holds no plaintext at all and a manifest altered in storage fails authentication instead
 * of being believed. Compression happens before this layer (the catalog's writers hand it
 * compressed bytes), so sealed objects are as small as unsealed ones plus 16 bytes per
 * 64 KiB.
 *
 * Sizes reported by stat() are plaintext sizes, derived from the stored size and the key
 * id in the object's header, so the catalog's size checks mean the same on both layers.
 * Small objects are stored as a JSON envelope naming the key, readable by a person who
 * opens the bucket: {"sealed":"dbops-v1","keyId":"k1","data":"<base64>"}.
 */
import { PassThrough, Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { openBuffer, Opener, plaintextSize, sealBuffer, sealedKeyId, sealStream, SealError, type Keyring } from './crypto';
import type { ObjectInfo, Storage } from './storage';

const EnvelopeSchema = z.strictObject({ sealed: z.literal('dbops-v1'), keyId: z.string(), data: z.string() });

export class EncryptedStorage implements Storage {
  readonly description: string;
  readonly publishesInPlace: boolean;

  constructor(
    private readonly inner: Storage,
    private readonly keyring: Keyring,
  ) {
    this.description = `${inner.description} (encrypted, key ${keyring.current})`;
    this.publishesInPlace = inner.publishesInPlace === true;
  }

  private sealText(text: string): string {
    const data = sealBuffer(this.keyring, Buffer.from(text, 'utf8')).toString('base64');
    return JSON.stringify({ sealed: 'dbops-v1', keyId: this.keyring.current, data }) + '\n';
  }

  private openText(key: string, stored: string): string {
    let envelope: z.infer<typeof EnvelopeSchema>;
    try {
      envelope = EnvelopeSchema.parse(JSON.parse(stored));
    } catch {
      throw new SealError(`${key}: not sealed by dbops, although the repository is configured with encryption (stored in plaintext, or altered)`);
    }
    return openBuffer(this.keyring, Buffer.from(envelope.data, 'base64'), key).toString('utf8');
  }

  async readText(key: string): Promise<string | null> {
    const stored = await this.inner.readText(key);
    return stored === null ? null : this.openText(key, stored);
  }

  writeText(key: string, text: string): Promise<void> {
    return this.inner.writeText(key, this.sealText(text));
  }

  createExclusive(key: string, text: string): Promise<boolean> {
    return this.inner.createExclusive(key, this.sealText(text));
  }

  children(prefix: string): Promise<string[]> {
    return this.inner.children(prefix);
  }

  /** The plaintext size: read from the object's first bytes (its key id) and its stored size. */
  async stat(key: string): Promise<ObjectInfo | null> {
    const info = await this.inner.stat(key);
    if (!info) return null;
    const head = await this.head(key);
    const keyId = sealedKeyId(head);
    // Not a sealed stream: report the stored size, and let the read say what is wrong.
    const size = keyId ? plaintextSize(info.size, keyId) : null;
    return { size: size ?? info.size, modified: info.modified };
  }

  private async head(key: string): Promise<Buffer> {
    const stream = await this.inner.openRead(key);
    const parts: Buffer[] = [];
    let length = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        parts.push(chunk);
        length += chunk.length;
        if (length >= 128) break;
      }
    } finally {
      stream.destroy();
    }
    return Buffer.concat(parts).subarray(0, 128);
  }

  /**
   * Lazy: nothing is read or opened until the caller reads, so an object that fails
   * authentication reports through the caller's pipeline, never as an 'error' event
   * nobody listens to yet.
   */
  async openRead(key: string): Promise<Readable> {
    const source = await this.inner.openRead(key);
    const opener = new Opener(this.keyring, key);
    async function* opened(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) yield* opener.update(chunk);
        yield* opener.finish();
      } finally {
        source.destroy();
      }
    }
    return Readable.from(opened(), { objectMode: false });
  }

  async openWrite(key: string): Promise<{ stream: Writable; done: Promise<void> }> {
    const sink = await this.inner.openWrite(key);
    const input = new PassThrough();
    const sealing = pipeline(input, sealStream(this.keyring), sink.stream);
    const done = sealing.then(() => sink.done);
    done.catch(() => undefined); // reported through `done` to whoever awaits it
    return { stream: input, done };
  }

  remove(key: string): Promise<void> {
    return this.inner.remove(key);
  }

  removeTree(prefix: string): Promise<void> {
    return this.inner.removeTree(prefix);
  }

  moveTree(from: string, to: string): Promise<void> {
    return this.inner.moveTree(from, to);
  }

  pruneEmpty(prefix: string): Promise<void> {
    return this.inner.pruneEmpty(prefix);
  }

  capacity(): Promise<{ free: number; total: number } | null> {
    return this.inner.capacity();
  }

  close(): void {
    this.inner.close?.();
  }
}
