/**
 * Client-side encryption: round trips of every size around the chunk boundary, and each way
 * a stored object can go wrong (a flipped byte, a cut, a swapped chunk, a missing or wrong
 * key) is refused with an error that says which object, where, and what to do.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CHUNK, openBuffer, openStream, parseMasterKey, plaintextSize, sealBuffer, sealStream, SealError, type Keyring } from '../../src/repository/crypto';
import { EncryptedStorage } from '../../src/repository/encryptedStorage';
import { LocalStorage } from '../../src/repository/storage';
import { ClusterLocks } from '../../src/repository/locks';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const ring = (current: string, ...ids: string[]): Keyring => ({ current, keys: new Map(ids.map((id) => [id, id === 'k1' ? k1 : k2])) });

/** Deterministic bytes that do not compress, so sizes are what they say. */
function data(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 2654435761) >>> 24;
  return out;
}

async function collect(source: Readable, transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(source, transform, new Writable({ write(b: Buffer, _e, cb) { out.push(b); cb(); } }));
  return Buffer.concat(out);
}

/** A stream in uneven pieces, as a socket would deliver it. */
function pieces(buf: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let at = 0, step = 1; at < buf.length; at += step, step = (step * 7 + 13) % 100_000 + 1) parts.push(buf.subarray(at, at + step));
  return Readable.from(parts);
}

test.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5, 1_000_000])('%d bytes: sealed, sized and opened back, in one piece or streamed', async (n) => {
  const plain = data(n);
  const sealed = sealBuffer(ring('k1', 'k1'), plain);
  expect(plaintextSize(sealed.length, 'k1')).toBe(n);
  expect(openBuffer(ring('k1', 'k1'), sealed, 'x').equals(plain)).toBe(true);
  const streamed = await collect(pieces(plain), sealStream(ring('k1', 'k1')));
  expect(streamed.length).toBe(sealed.length);
  expect((await collect(pieces(streamed), openStream(ring('k1', 'k1'), 'x'))).equals(plain)).toBe(true);
  if (n > 64) expect(sealed.includes(plain.subarray(0, 32))).toBe(false);
});

test('a flipped byte is refused, and the error names the object and the chunk it is in', async () => {
  const sealed = sealBuffer(ring('k1', 'k1'), data(5 * CHUNK));
  const at = 60 + 2 * (CHUNK + 16) + 100; // inside chunk 2
  sealed[at] = (sealed[at] ?? 0) ^ 0x01;
  const opened = collect(Readable.from([sealed]), openStream(ring('k1', 'k1'), 'c1/full/x/dump.sql.zst'));
  await expect(opened).rejects.toThrow(/c1\/full\/x\/dump.sql.zst: chunk 2 \(from plaintext byte 131072\) fails authentication/);
});

test('a cut-off object is refused, at a chunk boundary or inside a chunk', () => {
  const sealed = sealBuffer(ring('k1', 'k1'), data(4 * CHUNK + 10));
  const head = sealed.length - 4 * (CHUNK + 16) - 10 - 16;
  expect(() => openBuffer(ring('k1', 'k1'), sealed.subarray(0, head + 2 * (CHUNK + 16)), 'o')).toThrow(/o: truncated after chunk 1/);
  expect(() => openBuffer(ring('k1', 'k1'), sealed.subarray(0, sealed.length - 3), 'o')).toThrow(/fails authentication/);
  expect(() => openBuffer(ring('k1', 'k1'), sealed.subarray(0, 20), 'o')).toThrow(/truncated/);
  expect(plaintextSize(head + 3, 'k1')).toBeNull();
});

test('chunks cannot be swapped, within an object or between objects', () => {
  const a = sealBuffer(ring('k1', 'k1'), data(3 * CHUNK));
  const head = a.length - 3 * (CHUNK + 16);
  const swapped = Buffer.concat([a.subarray(0, head), a.subarray(head + CHUNK + 16, head + 2 * (CHUNK + 16)), a.subarray(head, head + CHUNK + 16), a.subarray(head + 2 * (CHUNK + 16))]);
  expect(() => openBuffer(ring('k1', 'k1'), swapped, 'o')).toThrow(/chunk 0 .* fails authentication/);
  const b = sealBuffer(ring('k1', 'k1'), data(3 * CHUNK));
  const spliced = Buffer.concat([a.subarray(0, head), b.subarray(head)]);
  expect(() => openBuffer(ring('k1', 'k1'), spliced, 'o')).toThrow(/fails authentication/);
});

test('key rotation: new objects use the current key, old ones open with the old key, a missing key is named', () => {
  const old = sealBuffer(ring('k1', 'k1'), Buffer.from('taken with k1'));
  const rotated = ring('k2', 'k1', 'k2');
  const fresh = sealBuffer(rotated, Buffer.from('taken with k2'));
  expect(openBuffer(rotated, old, 'o').toString()).toBe('taken with k1');
  expect(openBuffer(rotated, fresh, 'o').toString()).toBe('taken with k2');
  expect(() => openBuffer(ring('k2', 'k2'), old, 'c1/full/x/manifest.json')).toThrow(/c1\/full\/x\/manifest.json: encrypted with key k1, which is not in repository.encryption.keys/);
  expect(() => openBuffer(null, old, 'o')).toThrow(/encrypted with key k1, and this worker has no repository.encryption configured/);
  // The right id with the wrong bytes behind it.
  const impostor: Keyring = { current: 'k1', keys: new Map([['k1', k2]]) };
  expect(() => openBuffer(impostor, old, 'o')).toThrow(SealError);
  expect(() => openBuffer(rotated, Buffer.from('{"plain": true}'), 'o')).toThrow(/not encrypted by dbops/);
});

test('master keys: 32 bytes as hex or base64, anything else refused with how to make one', () => {
  expect(parseMasterKey(k1.toString('hex'), 'f').equals(k1)).toBe(true);
  expect(parseMasterKey(k1.toString('base64') + '\n', 'f').equals(k1)).toBe(true);
  expect(() => parseMasterKey('hunter2', 'repository.encryption.keys.k1')).toThrow(/repository.encryption.keys.k1: .*openssl rand -base64 32/);
  expect(() => parseMasterKey(randomBytes(16).toString('hex'), 'f')).toThrow(/32 random bytes/);
});

test('encrypted storage: nothing readable on disk, sizes as written, a tampered small object refused, locks still exclusive', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbops-enc-'));
  const storage = new EncryptedStorage(new LocalStorage(dir), ring('k1', 'k1'));
  await storage.writeText('c1/full/manifest.json', JSON.stringify({ database: 'canteen_secret', note: 'INSERT INTO' }));
  const sink = await storage.openWrite('c1/full/dump.sql');
  const payload = Buffer.from('INSERT INTO orders VALUES (1, "110101199003074321")\n'.repeat(5000));
  sink.stream.end(payload);
  await sink.done;
  expect((await storage.stat('c1/full/dump.sql'))?.size).toBe(payload.length);
  expect(await collect(await storage.openRead('c1/full/dump.sql'), new PassThrough())).toEqual(payload);
  expect(JSON.parse((await storage.readText('c1/full/manifest.json')) ?? '{}')).toEqual({ database: 'canteen_secret', note: 'INSERT INTO' });
  for (const file of ['manifest.json', 'dump.sql']) {
    const raw = readFileSync(path.join(dir, 'c1', 'full', file));
    for (const secret of ['canteen_secret', 'INSERT INTO', '110101199003074321']) expect(raw.includes(secret)).toBe(false);
  }
  const envelope = JSON.parse(readFileSync(path.join(dir, 'c1/full/manifest.json'), 'utf8')) as { data: string };
  const bytes = Buffer.from(envelope.data, 'base64');
  bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0x80;
  writeFileSync(path.join(dir, 'c1/full/manifest.json'), JSON.stringify({ ...envelope, data: bytes.toString('base64') }));
  await expect(storage.readText('c1/full/manifest.json')).rejects.toThrow(/c1\/full\/manifest.json: chunk 0 .* fails authentication/);
  writeFileSync(path.join(dir, 'c1/full/manifest.json'), JSON.stringify({ database: 'swapped in' }));
  await expect(storage.readText('c1/full/manifest.json')).rejects.toThrow(/not sealed by dbops/);

  const locks = new ClusterLocks(storage);
  const holder = { workflowId: 'w', runId: 'r', operation: 'full backup', since: 'now' };
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => locks.tryAcquire('c1', { ...holder, runId: `r${i}` })));
  expect(results.filter((r) => r === null)).toHaveLength(1);
  expect((await locks.holder('c1'))?.operation).toBe('full backup');
  expect(readdirSync(path.join(dir, 'c1', '.locks', 'backup')).length).toBeGreaterThan(0);
});
