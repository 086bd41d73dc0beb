/**
 * The S3 storage driver against a real S3-compatible server (the harness's S3Proxy): each
 * promise the repository relies on, kept over HTTP. Every test works under a prefix of its
 * own in the shared bucket.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ClusterLocks } from '../../src/repository/locks';
import { S3Storage, type S3StorageOptions } from '../../src/repository/s3Storage';
import { createS3Client } from '../../src/tools/s3Client';
import { freePort } from '../../src/mysql/servers/local';
import { PROJECT_ROOT, s3Server } from '../harness/context';

const MiB = 1024 * 1024;
const server = s3Server();
const credentials = {
  accessKeyId: readFileSync(server.accessKeyIdFile, 'utf8').trim(),
  secretAccessKey: readFileSync(server.secretAccessKeyFile, 'utf8').trim(),
};
const raw: S3Client = createS3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials });
const opened: S3Storage[] = [];

afterAll(() => {
  for (const storage of opened) storage.destroy();
  raw.destroy();
});

/** A prefix no other test uses. */
function freshPrefix(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

function storageAt(prefix: string, extra: Partial<S3StorageOptions> = {}): S3Storage {
  const storage = new S3Storage({ endpoint: server.endpoint, region: server.region, bucket: server.bucket, prefix, pathStyle: true, credentials, ...extra });
  opened.push(storage);
  return storage;
}

/** The same bytes every time for a seed (xorshift32), in chunks of at most 1 MiB. */
function* deterministicBytes(total: number, seed: number): Generator<Buffer> {
  let x = seed >>> 0 || 1;
  for (let made = 0; made < total; ) {
    const n = Math.min(MiB, total - made);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      words[i] = x;
    }
    yield Buffer.from(words.buffer, 0, n);
    made += n;
  }
}

function sha256OfBytes(total: number, seed: number): string {
  const hash = createHash('sha256');
  for (const chunk of deterministicBytes(total, seed)) hash.update(chunk);
  return hash.digest('hex');
}

async function sha256OfStream(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function writeStream(storage: S3Storage, key: string, total: number, seed: number): Promise<void> {
  const { stream, done } = await storage.openWrite(key);
  await pipeline(Readable.from(deterministicBytes(total, seed)), stream);
  await done;
}

/** The multipart uploads in progress under a bucket prefix. */
async function uploadsUnder(bucketPrefix: string): Promise<{ key: string; uploadId: string }[]> {
  const out = await raw.send(new ListMultipartUploadsCommand({ Bucket: server.bucket, Prefix: bucketPrefix }));
  return (out.Uploads ?? []).map((u) => ({ key: u.Key ?? '', uploadId: u.UploadId ?? '' }));
}

/** Every object key in the bucket under a prefix. */
async function objectsUnder(bucketPrefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: bucketPrefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key ?? '');
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function etag(bucketKey: string): Promise<string> {
  return (await raw.send(new HeadObjectCommand({ Bucket: server.bucket, Key: bucketKey }))).ETag ?? '';
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('text: written, read back, replaced; a missing key reads as null; stat gives size and time', async () => {
  const prefix = freshPrefix('text');
  const storage = storageAt(prefix);
  expect(storage.description).toBe(`s3://${server.bucket}/${prefix}`);
  expect(await storage.readText('cluster/chain.json')).toBeNull();
  expect(await storage.stat('cluster/chain.json')).toBeNull();

  const before = Date.now();
  await storage.writeText('cluster/chain.json', 'first – ünïcode\n');
  expect(await storage.readText('cluster/chain.json')).toBe('first – ünïcode\n');
  await storage.writeText('cluster/chain.json', 'second');
  expect(await storage.readText('cluster/chain.json')).toBe('second');
  const info = await storage.stat('cluster/chain.json');
  expect(info?.size).toBe(6);
  expect(info!.modified.getTime()).toBeGreaterThan(before - 5_000); // the server's clock, to the second

  expect(await objectsUnder(`${prefix}/`)).toEqual([`${prefix}/cluster/chain.json`]);
  await storage.remove('cluster/chain.json');
  expect(await storage.readText('cluster/chain.json')).toBeNull();
  await storage.remove('cluster/chain.json'); // removing what is gone is fine
});

test('a 20 MiB stream goes up in three 8 MiB parts and reads back byte for byte', async () => {
  const prefix = freshPrefix('stream');
  const storage = storageAt(prefix);
  const key = 'cluster/.staging/b1/dump.sql.zst';
  await writeStream(storage, key, 20 * MiB, 7);

  expect((await storage.stat(key))?.size).toBe(20 * MiB);
  expect(await etag(`${prefix}/${key}`)).toMatch(/-3"$/); // a multipart object of 3 parts
  expect(await sha256OfStream(await storage.openRead(key))).toBe(sha256OfBytes(20 * MiB, 7));
  expect(await uploadsUnder(`${prefix}/`)).toEqual([]);

  // Small and empty streams are single objects.
  await writeStream(storage, 'small', 1000, 3);
  expect(await sha256OfStream(await storage.openRead('small'))).toBe(sha256OfBytes(1000, 3));
  await writeStream(storage, 'empty', 0, 1);
  expect((await storage.stat('empty'))?.size).toBe(0);

  await expect(storage.openRead('cluster/missing.sql.zst')).rejects.toThrow(`s3://${server.bucket}/${prefix}/cluster/missing.sql.zst failed: the object does not exist`);
});

test('a writer that fails mid-stream leaves no object and no multipart upload behind', async () => {
  const prefix = freshPrefix('broken');
  const storage = storageAt(prefix);
  const { stream, done } = await storage.openWrite('dump.sql.zst');
  const source = Readable.from(
    (async function* () {
      yield* deterministicBytes(12 * MiB, 5);
      // The first part is on its way: the store holds an upload in progress.
      await until('the upload to start', async () => ((await uploadsUnder(`${prefix}/`)).length > 0 ? true : null));
      throw new Error('the dump tool died');
    })(),
  );
  await expect(pipeline(source, stream)).rejects.toThrow('the dump tool died');
  await expect(done).rejects.toThrow(`uploading s3://${server.bucket}/${prefix}/dump.sql.zst failed`);
  expect(await uploadsUnder(`${prefix}/`)).toEqual([]);
  expect(await storage.stat('dump.sql.zst')).toBeNull();
});

test('createExclusive: exactly one writer wins a key, and the cluster lock works on it', async () => {
  const prefix = freshPrefix('exclusive');
  const storage = storageAt(prefix);
  expect(await storage.createExclusive('lock/gen-1', 'first')).toBe(true);
  expect(await storage.createExclusive('lock/gen-1', 'second')).toBe(false);
  expect(await storage.readText('lock/gen-1')).toBe('first');

  // Racing writers, each with its own client: one winner per key.
  const racers = Array.from({ length: 6 }, () => storageAt(prefix));
  for (let round = 0; round < 5; round++) {
    const results = await Promise.all(racers.map((s, i) => s.createExclusive(`race/${round}`, `writer ${i}`)));
    expect(results.filter((won) => won)).toHaveLength(1);
    expect(await storage.readText(`race/${round}`)).toBe(`writer ${results.indexOf(true)}`);
  }

  const locks = new ClusterLocks(storage);
  const first = { workflowId: 'wf-1', runId: 'run-1', operation: 'full backup', since: new Date().toISOString() };
  const second = { workflowId: 'wf-2', runId: 'run-2', operation: 'full backup', since: new Date().toISOString() };
  expect(await locks.tryAcquire('c1', first)).toBeNull();
  expect(await locks.tryAcquire('c1', second)).toEqual(first);
  await locks.release('c1', 'wf-1', 'run-1');
  expect(await locks.tryAcquire('c1', second)).toBeNull();
});

test('children: the names directly under a folder, at the root and nested, sorted, once each (a folder marker too)', async () => {
  const prefix = freshPrefix('children');
  const storage = storageAt(prefix);
  expect(await storage.children('')).toEqual([]);
  for (const key of ['b/full/2026-11-22/x/manifest.json', 'b/full/2026-11-23/y/manifest.json', 'b/full/index.json', 'a.json', '.staging/z/f', 'marked/inner']) {
    await storage.writeText(key, key);
  }
  // A folder marker (what consoles make for "create folder"): listed once, as the folder.
  await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}/marked/`, Body: '', ContentLength: 0 }));
  expect(await storage.children('')).toEqual(['.staging', 'a.json', 'b', 'marked']);
  expect(await storage.children('marked')).toEqual(['inner']);
  expect(await storage.children('b')).toEqual(['full']);
  expect(await storage.children('b/full')).toEqual(['2026-11-22', '2026-11-23', 'index.json']);
  expect(await storage.children('b/full/2026-11-22/x')).toEqual(['manifest.json']);
  expect(await storage.children('nothing/here')).toEqual([]);
  expect(await storage.children('a.json')).toEqual([]); // an object, not a folder
  // A folder's name is not a prefix of its sibling's: 'b' lists nothing of 'b2'.
  await storage.writeText('b2/other', '');
  expect(await storage.children('b')).toEqual(['full']);
});

test('moveTree: everything arrives, the manifest only after the rest, the sources are gone; a retry is harmless', async () => {
  const prefix = freshPrefix('move');
  const storage = storageAt(prefix);
  const from = 'c/.staging/b1';
  const to = 'c/full/2026-11-22/b1';
  const files = ['dump.sql.zst', 'binlogs/mysql-bin.000001', 'binlogs/mysql-bin.000002', 'notes/a/b/deep.txt'];
  for (const f of files) await storage.writeText(`${from}/${f}`, `content of ${f}`);
  await writeStream(storage, `${from}/big.bin`, 9 * MiB, 11);
  await storage.writeText(`${from}/manifest.json`, '{"id":"b1"}\n');
  const everything = [...files, 'big.bin', 'manifest.json'].sort();

  // While the move runs, look again and again: whenever the target's manifest exists, the
  // whole backup is there (checked by listing after the manifest was seen); whenever the
  // source's manifest still exists, nothing of the source was deleted yet.
  let moving = true;
  let looks = 0;
  const watcher = (async () => {
    while (moving) {
      looks++;
      if ((await storage.stat(`${to}/manifest.json`)) !== null) {
        expect(await objectsUnder(`${prefix}/${to}/`)).toEqual(everything.map((f) => `${prefix}/${to}/${f}`).sort());
      }
      const sourceListed = await objectsUnder(`${prefix}/${from}/`);
      if ((await storage.stat(`${from}/manifest.json`)) !== null) {
        expect(sourceListed).toEqual(everything.map((f) => `${prefix}/${from}/${f}`).sort());
      }
    }
  })();
  try {
    await storage.moveTree(from, to);
  } finally {
    moving = false;
    await watcher;
  }
  expect(looks).toBeGreaterThan(0);

  expect(await objectsUnder(`${prefix}/${from}/`)).toEqual([]);
  expect(await objectsUnder(`${prefix}/${to}/`)).toEqual(everything.map((f) => `${prefix}/${to}/${f}`).sort());
  for (const f of files) expect(await storage.readText(`${to}/${f}`)).toBe(`content of ${f}`);
  expect(await storage.readText(`${to}/manifest.json`)).toBe('{"id":"b1"}\n');
  expect(await sha256OfStream(await storage.openRead(`${to}/big.bin`))).toBe(sha256OfBytes(9 * MiB, 11));

  // The activity is retried after a move that did happen: nothing to do, no error.
  await storage.moveTree(from, to);
  expect(await objectsUnder(`${prefix}/${to}/`)).toHaveLength(everything.length);
  // Nothing at either place is an error, and so is a folder moved into itself.
  await expect(storage.moveTree('c/.staging/none', 'c/full/none')).rejects.toThrow('there is nothing there');
  await expect(storage.moveTree('c/full', 'c/full/inner')).rejects.toThrow('one contains the other');
});

test('moveTree copies large objects in ranges (multipart copy), byte for byte', async () => {
  const prefix = freshPrefix('bigcopy');
  // A small threshold stands in for S3's 5 GiB: 12 MiB is copied in parts of 5 MiB.
  const storage = storageAt(prefix, { multipartCopyThreshold: 1 * MiB, copyPartSize: 5 * MiB });
  await writeStream(storage, 'staging/dump.sql.zst', 12 * MiB, 21);
  await storage.writeText('staging/small.txt', 'under the threshold');
  await storage.writeText('staging/manifest.json', '{}');
  await storage.moveTree('staging', 'final');

  expect(await etag(`${prefix}/final/dump.sql.zst`)).toMatch(/-3"$/); // 5 + 5 + 2 MiB
  expect(await etag(`${prefix}/final/small.txt`)).not.toMatch(/-\d+"$/); // one CopyObject
  expect(await sha256OfStream(await storage.openRead('final/dump.sql.zst'))).toBe(sha256OfBytes(12 * MiB, 21));
  expect(await storage.readText('final/small.txt')).toBe('under the threshold');
  expect(await objectsUnder(`${prefix}/staging/`)).toEqual([]);
  expect(await uploadsUnder(`${prefix}/`)).toEqual([]);
});

test('removeTree deletes more than one batch of objects, and only under that folder', async () => {
  const prefix = freshPrefix('remove');
  const storage = storageAt(prefix);
  const keys = [...Array.from({ length: 1005 }, (_, i) => `many/f${String(i).padStart(4, '0')}`), 'many/sub/deep', 'many2/keep', 'keep'];
  for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((k) => storage.writeText(k, k)));
  expect(await storage.children('many')).toHaveLength(1006); // two pages of listing

  await storage.removeTree('many');
  expect(await objectsUnder(`${prefix}/many/`)).toEqual([]);
  expect(await storage.children('')).toEqual(['keep', 'many2']);
  expect(await storage.readText('many2/keep')).toBe('many2/keep');
  await storage.removeTree('many'); // again: nothing to do
});

test('removeTree aborts the multipart upload a SIGKILLed worker left in its staging folder', async () => {
  const built = path.join(PROJECT_ROOT, 'dist', 'src', 'repository', 's3Storage.js');
  if (!existsSync(built)) throw new Error(`${built} missing: npm test compiles first (pretest); or run npm run build`);
  const prefix = freshPrefix('killed');
  const staging = 'c/.staging/b1';
  // A worker that streams a dump into the staging folder, slowly and without end.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { readFileSync } = require('node:fs');
      const { S3Storage } = require(${JSON.stringify(built)});
      const [endpoint, bucket, prefix, key, idFile, secretFile] = process.argv.slice(1);
      const storage = new S3Storage({ endpoint, region: 'us-east-1', bucket, prefix, pathStyle: true, credentials: {
        accessKeyId: readFileSync(idFile, 'utf8').trim(), secretAccessKey: readFileSync(secretFile, 'utf8').trim() } });
      storage.openWrite(key).then(({ stream }) => {
        const chunk = Buffer.alloc(1024 * 1024, 120);
        setInterval(() => stream.write(chunk), 20);
      });
      `,
      server.endpoint,
      server.bucket,
      prefix,
      `${staging}/dump.sql.zst`,
      server.accessKeyIdFile,
      server.secretAccessKeyFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  try {
    // The upload is under way and holds at least one part.
    const upload = await until('the child to start its upload', async () => {
      if (child.exitCode !== null) throw new Error(`the writer exited early: ${stderr}`);
      return (await uploadsUnder(`${prefix}/${staging}/`))[0] ?? null;
    });
    await until('a part to be stored', async () => {
      const parts = await raw.send(new ListPartsCommand({ Bucket: server.bucket, Key: upload.key, UploadId: upload.uploadId }));
      return (parts.Parts ?? []).length > 0 ? true : null;
    });
  } finally {
    child.kill('SIGKILL');
  }
  expect(await exited).toBe('SIGKILL');
  // Nothing cleaned up after the killed writer: its upload is still there.
  expect(await uploadsUnder(`${prefix}/${staging}/`)).toHaveLength(1);

  // The next try starts by resetting the staging folder.
  const storage = storageAt(prefix);
  await storage.writeText(`${staging}/owner.json`, '{}');
  await storage.removeTree(staging);
  expect(await uploadsUnder(`${prefix}/`)).toEqual([]);
  expect(await objectsUnder(`${prefix}/`)).toEqual([]);
});

test('errors say what to check: credentials, a missing bucket, an endpoint that does not answer', async () => {
  const prefix = freshPrefix('errors');
  const wrongSecret = storageAt(prefix, { credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: 'not-the-secret' } });
  const error = await wrongSecret.readText('c/chain.json').then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(error?.message).toMatch(new RegExp(`^reading s3://${server.bucket}/${prefix}/c/chain\\.json failed: .*check the access key id and secret access key`));
  expect(error?.message).not.toContain('not-the-secret');
  await expect(wrongSecret.writeText('c/x', 'x')).rejects.toThrow('credentials');

  const noBucket = storageAt(prefix, { bucket: 'dbops-no-such-bucket' });
  await expect(noBucket.writeText('c/x', 'x')).rejects.toThrow('bucket dbops-no-such-bucket does not exist');
  // A stream whose upload fails does not leave its writer blocked: the writer fails too.
  const sink = await noBucket.openWrite('c/dump.sql.zst');
  await expect(pipeline(Readable.from(deterministicBytes(40 * MiB, 2)), sink.stream)).rejects.toThrow();
  await expect(sink.done).rejects.toThrow('bucket dbops-no-such-bucket does not exist');

  const nobody = `http://127.0.0.1:${await freePort()}`;
  const unreachable = storageAt(prefix, { endpoint: nobody });
  await expect(unreachable.readText('c/x')).rejects.toThrow(`cannot reach ${nobody}`);
});

test('keys with .., absolute keys and bad prefixes are refused before anything is sent', async () => {
  const storage = storageAt(freshPrefix('keys'));
  await expect(storage.readText('../outside')).rejects.toThrow('not a repository key');
  await expect(storage.writeText('c/../../x', 'x')).rejects.toThrow('not a repository key');
  await expect(storage.createExclusive('/abs', 'x')).rejects.toThrow('not a repository key');
  await expect(storage.children('c/..')).rejects.toThrow('not a repository key');
  await expect(storage.openWrite('c//x')).rejects.toThrow('not a repository key');
  await expect(storage.removeTree('..')).rejects.toThrow('not a repository key');
  await expect(storage.moveTree('c/a', 'c/../b')).rejects.toThrow('not a repository key');
  expect(() => storageAt('a/../b')).toThrow('not a repository key');
});
