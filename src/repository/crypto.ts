/**
 * Client-side encryption of everything dbops stores: AES-256-GCM from Node's crypto, used
 * in the STREAM construction (the one the age format uses) so that a stream of any length
 * is encrypted in fixed chunks, each authenticated on its own:
 *
 *   header  = "DBOPSENC" | version 1 | key id length | key id | 32 random bytes (salt)
 *   key     = HKDF-SHA256(master key of that id, salt, "dbops object v1")   one key per object
 *   chunk i = AES-256-GCM(key, nonce = i as 11 bytes big-endian | last ? 1 : 0,
 *                         aad = header) of 64 KiB of plaintext, then its 16-byte tag
 *
 * What that gives a reader:
 *   - a flipped byte fails the tag of its own chunk, so the error says where (chunk i at
 *     byte offset o) and nothing after the damage is trusted;
 *   - a cut-off object fails: the chunk that now comes last was not sealed as the last one;
 *   - chunks cannot be reordered (the index is in the nonce) or spliced between objects
 *     (every object has its own key);
 *   - the header names the key id, so a rotated key still opens old objects and an unknown
 *     or missing key is named in the error;
 *   - the plaintext size follows from the stored size alone (plaintextSize), so the catalog
 *     can compare sizes without reading.
 *
 * The final chunk is shorter than 64 KiB unless the plaintext is empty or a whole number
 * of chunks, in which case the last full chunk is the final one (an empty plaintext is one
 * empty final chunk).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { KEY_ID_PATTERN } from '../domain/identifiers';

export const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED_CHUNK = CHUNK + TAG;
const MAGIC = Buffer.from('DBOPSENC', 'ascii');
const VERSION = 1;
const SALT = 32;

/** Thrown for anything that is not an intact object sealed with a key we hold. */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

/** The master keys a worker holds, by id, and the one new objects are sealed with. */
export interface Keyring {
  current: string;
  keys: ReadonlyMap<string, Buffer>;
}

/** A master key as configured: 32 bytes, written as 64 hex digits or as base64. */
export function parseMasterKey(text: string, field: string): Buffer {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : null;
  if (!bytes || bytes.length !== 32) {
    throw new SealError(`${field}: an encryption key is 32 random bytes, written as 64 hex digits or base64 (make one with: openssl rand -base64 32)`);
  }
  return bytes;
}

function objectKey(master: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', master, salt, 'dbops object v1', 32));
}

function nonce(index: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(index, 5, 6); // 11-byte counter; 2^48 chunks of 64 KiB is far beyond any object
  n[11] = last ? 1 : 0;
  return n;
}

function header(keyId: string, salt: Buffer): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  return Buffer.concat([MAGIC, Buffer.from([VERSION, id.length]), id, salt]);
}

/** The key id an object was sealed with, from its first bytes; null when it is not sealed by dbops. */
export function sealedKeyId(head: Buffer): string | null {
  if (head.length < MAGIC.length + 2 || !head.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  const len = head[MAGIC.length + 1] ?? 0;
  const id = head.subarray(MAGIC.length + 2, MAGIC.length + 2 + len).toString('ascii');
  return KEY_ID_PATTERN.test(id) ? id : null;
}

/** The plaintext size of a sealed object of `sealedSize` bytes sealed with `keyId`; null when no intact object has that size. */
export function plaintextSize(sealedSize: number, keyId: string): number | null {
  const body = sealedSize - header(keyId, Buffer.alloc(SALT)).length;
  if (body < TAG) return null;
  const chunks = Math.ceil(body / SEALED_CHUNK);
  const last = body - (chunks - 1) * SEALED_CHUNK;
  if (last < TAG || (last === TAG && chunks > 1)) return null;
  return body - chunks * TAG;
}

function sealChunk(key: Buffer, aad: Buffer, index: number, last: boolean, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce(index, last));
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

function openChunk(key: Buffer, aad: Buffer, index: number, last: boolean, sealed: Buffer): Buffer | null {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce(index, last));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG)), decipher.final()]);
  } catch {
    return null;
  }
}

/** Seals one object, fed in pieces of any size: update() and finish() return sealed bytes. */
export class Sealer {
  private readonly aad: Buffer;
  private readonly key: Buffer;
  private index = 0;
  private pending: Buffer = Buffer.alloc(0);
  private headerSent = false;

  constructor(keyring: Keyring) {
    const master = keyring.keys.get(keyring.current);
    if (!master) throw new SealError(`repository.encryption.current: no key with id ${JSON.stringify(keyring.current)} in repository.encryption.keys`);
    const salt = randomBytes(SALT);
    this.aad = header(keyring.current, salt);
    this.key = objectKey(master, salt);
  }

  private start(out: Buffer[]): void {
    if (!this.headerSent) out.push(this.aad);
    this.headerSent = true;
  }

  update(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.start(out);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    // Keep at least one byte back: only at the end is it known which chunk is the last.
    while (this.pending.length > CHUNK) {
      out.push(sealChunk(this.key, this.aad, this.index++, false, this.pending.subarray(0, CHUNK)));
      this.pending = this.pending.subarray(CHUNK);
    }
    return out;
  }

  finish(): Buffer[] {
    const out: Buffer[] = [];
    this.start(out);
    out.push(sealChunk(this.key, this.aad, this.index, true, this.pending));
    return out;
  }
}

/** Opens one sealed object, fed in pieces: update() and finish() return plaintext or throw SealError. */
export class Opener {
  private head: Buffer | null = null;
  private key: Buffer | null = null;
  private buffered: Buffer = Buffer.alloc(0);
  private index = 0;

  /** `what` names the object in errors. */
  constructor(
    private readonly keyring: Keyring | null,
    private readonly what: string,
  ) {}

  private fail(message: string): SealError {
    return new SealError(`${this.what}: ${message}`);
  }

  private damaged(i: number): SealError {
    return this.fail(`chunk ${i} (from plaintext byte ${i * CHUNK}) fails authentication: the object is damaged or was altered`);
  }

  /** Reads the header once enough bytes are there; false while more are needed. */
  private readHeader(): boolean {
    const b = this.buffered;
    if (b.length < MAGIC.length + 2) return false;
    if (!b.subarray(0, MAGIC.length).equals(MAGIC)) throw this.fail('not encrypted by dbops, although the repository is configured with encryption (stored in plaintext, or damaged at its start)');
    const version = b[MAGIC.length];
    if (version !== VERSION) throw this.fail(`sealed with format version ${version}; this dbops reads version ${VERSION}`);
    const total = MAGIC.length + 2 + (b[MAGIC.length + 1] ?? 0) + SALT;
    if (b.length < total) return false;
    const head = Buffer.from(b.subarray(0, total));
    const keyId = sealedKeyId(head);
    if (!keyId) throw this.fail('damaged header (key id unreadable)');
    if (!this.keyring) throw this.fail(`encrypted with key ${keyId}, and this worker has no repository.encryption configured`);
    const master = this.keyring.keys.get(keyId);
    if (!master) throw this.fail(`encrypted with key ${keyId}, which is not in repository.encryption.keys (keep old keys there to read backups taken with them)`);
    this.head = head;
    this.key = objectKey(master, head.subarray(total - SALT));
    this.buffered = b.subarray(total);
    return true;
  }

  update(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    if (!this.head && !this.readHeader()) return [];
    const out: Buffer[] = [];
    // A whole sealed chunk with more bytes after it cannot be the last one.
    while (this.buffered.length > SEALED_CHUNK) {
      const plain = openChunk(this.key as Buffer, this.head as Buffer, this.index, false, this.buffered.subarray(0, SEALED_CHUNK));
      if (!plain) throw this.damaged(this.index);
      out.push(plain);
      this.index++;
      this.buffered = this.buffered.subarray(SEALED_CHUNK);
    }
    return out;
  }

  finish(): Buffer[] {
    if (!this.head && !this.readHeader()) throw this.fail('truncated: shorter than its header');
    const last = this.buffered;
    if (last.length < TAG) throw this.fail(this.index === 0 ? 'truncated: nothing after its header' : `truncated after chunk ${this.index - 1}: the last chunk is missing`);
    const plain = openChunk(this.key as Buffer, this.head as Buffer, this.index, true, last);
    if (plain) return [plain];
    // Either this chunk was altered, or the object was cut off right after it.
    const middle = last.length === SEALED_CHUNK && openChunk(this.key as Buffer, this.head as Buffer, this.index, false, last);
    throw middle ? this.fail(`truncated after chunk ${this.index}: the chunks that followed are missing`) : this.damaged(this.index);
  }
}

function transformOf(step: { update(b: Buffer): Buffer[]; finish(): Buffer[] }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        for (const b of step.update(chunk)) this.push(b);
        cb();
      } catch (error) {
        cb(error as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        for (const b of step.finish()) this.push(b);
        cb();
      } catch (error) {
        cb(error as Error);
      }
    },
  });
}

/** Encrypts a stream: plaintext in, sealed object out. */
export function sealStream(keyring: Keyring): Transform {
  return transformOf(new Sealer(keyring));
}

/** Decrypts a stream; it fails on anything but an intact object, and never passes on plaintext from a damaged chunk. */
export function openStream(keyring: Keyring | null, what: string): Transform {
  return transformOf(new Opener(keyring, what));
}

/** Seals a small object in memory (manifests, indexes, reports, locks). */
export function sealBuffer(keyring: Keyring, plain: Buffer): Buffer {
  const sealer = new Sealer(keyring);
  return Buffer.concat([...sealer.update(plain), ...sealer.finish()]);
}

/** Opens a small sealed object in memory; throws SealError. */
export function openBuffer(keyring: Keyring | null, sealed: Buffer, what: string): Buffer {
  const opener = new Opener(keyring, what);
  return Buffer.concat([...opener.update(sealed), ...opener.finish()]);
}
