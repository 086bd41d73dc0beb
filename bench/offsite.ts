/**
 * npm run bench -- offsite [--product mariadb|mysql|both]   (both by default)
 *
 * What sending the full off-site, sealed, costs: on the reference dataset (4 million order
 * rows), for each product on a private server of its own (one after the other), three
 * ways to take the same full backup:
 *   1. the full backup WORKFLOW into a local folder repository (as the backup bench runs it);
 *   2. the same workflow into an S3 repository with client-side encryption (every object
 *      sealed with AES-256-GCM); the bucket is served by a private S3Proxy on 127.0.0.1
 *      (filesystem backend, on the same disk as the local folder);
 *   3. the peer, the shell pipeline a DBA would write: the product's dump tool as the backup
 *      bench runs it, `| zstd -T0 -3 |` a streaming upload of stdin into the same bucket
 *      (bench/s3Upload.ts: the same SDK, the same part size and parts in flight as dbops).
 * Four rounds, each in the reverse order of the one before (local, S3, peer; then peer,
 * S3, local), so neither neighbour of the S3 run always goes first; the best of each is
 * compared: S3-encrypted / local (target <= 1.15) and S3-encrypted / peer. The notes give
 * what each stored: the sealed objects in the bucket against the peer's plain object.
 *
 * `--smoke[=ROWS]` only proves that the benchmark runs end to end: two rounds on a small
 * dataset (20,000 rows unless given) kept in a server of its own (bench/data/smoke). Its
 * figures measure nothing and are not for bench/RESULTS.md.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startS3Server, type S3Server } from '../src/dev/s3Server';
import { spaceSaving, totalRawBytes, totalStoredBytes, type Manifest, type Product } from '../src/domain/manifest';
import { formatBytes } from '../src/domain/naming';
import { layout } from '../src/repository';
import { createS3Client } from '../src/tools/s3Client';
import { backupVia, peerDumpCommand } from './backup';
import { benchContext, machine, PRODUCT_NAME, q, sh, timed, type BenchContext, type SuiteOptions } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

const ROUNDS = 4;
const SMOKE_ROUNDS = 2;
const TARGET_VS_LOCAL = 1.15;
const BUCKET = 'bench-offsite';
/** Where dbops keeps its repository in the bucket, and where the peer puts its dumps. */
const REPO_PREFIX = 'dbops';
const PEER_PREFIX = 'peer';
/** The compiled uploader, next to this file in dist/bench. */
const UPLOADER = path.join(__dirname, 's3Upload.js');

/** Every object under a prefix of the bucket, with its stored size: what the bucket really holds. */
async function storedObjects(s3: S3Server, prefix: string): Promise<Map<string, number>> {
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: readFileSync(s3.accessKeyIdFile, 'utf8').trim(), secretAccessKey: readFileSync(s3.secretAccessKeyFile, 'utf8').trim() },
  });
  const sizes = new Map<string, number>();
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key !== undefined) sizes.set(o.Key.slice(prefix.length), o.Size ?? 0);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return sizes;
}

/** The peer: the backup bench's dump, into zstd, into the uploader. */
function peerCommand(ctx: BenchContext, s3: S3Server, key: string): string {
  const upload = [
    q(process.execPath),
    q(UPLOADER),
    `--endpoint ${q(s3.endpoint)}`,
    `--bucket ${q(s3.bucket)}`,
    `--key ${q(key)}`,
    `--access-key-id-file ${q(s3.accessKeyIdFile)}`,
    `--secret-access-key-file ${q(s3.secretAccessKeyFile)}`,
  ].join(' ');
  return `${peerDumpCommand(ctx)} | zstd -T0 -3 -q | ${upload}`;
}

interface Round {
  local: number;
  s3: number;
  peer: number;
}

async function benchmarkProduct(product: Product, options: SuiteOptions): Promise<Row[]> {
  const name = PRODUCT_NAME[product];
  const say = (s: string) => log(`${name}: ${s}`);
  const ctx = await benchContext(say, product, options);
  let s3: S3Server | null = null;
  try {
    s3 = await startS3Server({ baseDir: path.join(ctx.work, 's3'), bucket: BUCKET });
    const keyFile = path.join(ctx.work, 'repository.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    const localConfig = ctx.configFor('repo-local');
    const s3Config = ctx.configFor('repo-s3', {
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: s3.bucket,
        prefix: REPO_PREFIX,
        pathStyle: true,
        accessKeyId: { file: s3.accessKeyIdFile },
        secretAccessKey: { file: s3.secretAccessKeyFile },
      },
      encryption: { current: 'k1', keys: { k1: { file: keyFile } } },
      compression: 'zstd',
    });

    const server = s3;
    const rounds: Round[] = [];
    let lastLocal: Manifest | null = null;
    let lastS3: Manifest | null = null;
    let lastPeerKey = '';
    const total = options.smokeRows === undefined ? ROUNDS : SMOKE_ROUNDS;
    for (let i = 0; i < total; i++) {
      const round: Partial<Round> = {};
      const runs = {
        local: async () => {
          const o = await backupVia(ctx, localConfig, 'full');
          round.local = o.seconds;
          lastLocal = o.value;
        },
        s3: async () => {
          const o = await backupVia(ctx, s3Config, 'full');
          round.s3 = o.seconds;
          lastS3 = o.value;
        },
        peer: async () => {
          lastPeerKey = `${PEER_PREFIX}/bench-full-${i + 1}.sql.zst`;
          round.peer = (await timed(() => sh(peerCommand(ctx, server, lastPeerKey)))).seconds;
        },
      };
      const order: Array<keyof Round> = i % 2 === 0 ? ['local', 's3', 'peer'] : ['peer', 's3', 'local'];
      say(`full backup, round ${i + 1}: ${order.join(', ')}`);
      for (const contestant of order) await runs[contestant]();
      const done = round as Round;
      rounds.push(done);
      say(`  local ${done.local.toFixed(1)} s, S3 encrypted ${done.s3.toFixed(1)} s, peer ${done.peer.toFixed(1)} s`);
    }

    const local = lastLocal as Manifest | null;
    const sealed = lastS3 as Manifest | null;
    if (!local || !sealed) throw new Error('no backup was taken');
    const backupKey = layout.backup('bench', 'full', sealed.id, new Date(sealed.startedAt));
    const inBucket = await storedObjects(s3, `${REPO_PREFIX}/${backupKey}/`);
    const artifact = sealed.artifacts[0]!;
    const sealedDump = inBucket.get(artifact.name);
    const sealedManifest = inBucket.get('manifest.json');
    const peerObject = (await storedObjects(s3, `${PEER_PREFIX}/`)).get(lastPeerKey.slice(PEER_PREFIX.length + 1));
    if (sealedDump === undefined || sealedManifest === undefined) throw new Error(`the bucket has no ${artifact.name} or manifest.json under ${REPO_PREFIX}/${backupKey}/`);
    if (peerObject === undefined) throw new Error(`the bucket has no ${lastPeerKey}`);

    const best = (xs: number[]) => Math.min(...xs);
    const vsLocal = best(rounds.map((r) => r.s3)) / best(rounds.map((r) => r.local));
    const rows = sealed.tables.reduce((n, t) => n + t.rows, 0);
    const sql = formatBytes(totalRawBytes(sealed));
    const tags = ((sealedDump - artifact.size) / artifact.size) * 100;
    return [
      {
        product: name,
        what: `S3 encrypted vs local folder, full backup, ${rows.toLocaleString()} rows, ${sql} SQL`,
        peer: 'dbops full backup to a local folder repository',
        runs: rounds.map((r) => ({ peer: r.local, ours: r.s3 })),
        note:
          `target ≤ ${TARGET_VS_LOCAL.toFixed(2)}: ${vsLocal <= TARGET_VS_LOCAL ? 'met' : 'missed'}; ` +
          `local stored ${formatBytes(totalStoredBytes(local))}, the bucket ${formatBytes(sealedDump)} sealed dump (+${tags.toFixed(2)} % for the seal) and a ${formatBytes(sealedManifest)} sealed manifest; ` +
          'both read the dump back to verify it; to S3 that read goes over HTTP and is decrypted, and publishing copies each object server-side where the folder renames',
      },
      {
        product: name,
        what: `S3 encrypted vs shell pipeline, full backup, ${rows.toLocaleString()} rows, ${sql} SQL`,
        peer: `${path.basename(ctx.tools.dump)} --single-transaction … | zstd -T0 -3 | s3Upload (lib-storage Upload, 8 MiB parts, 2 in flight)`,
        runs: rounds.map((r) => ({ peer: r.peer, ours: r.s3 })),
        note:
          `stored: dbops ${formatBytes(sealedDump)} sealed (${(spaceSaving(sealed) * 100).toFixed(1)} % saving), the peer ${formatBytes(peerObject)} in the clear; ` +
          'the peer neither encrypts nor verifies nor publishes atomically; its time includes starting node and the SDK',
      },
    ];
  } finally {
    await s3?.stop();
    await ctx.close();
  }
}

/** Each product in turn, on its own server and its own S3 server; one table with a row pair per product. */
export async function runOffsiteBenchmark(products: Product[], options: SuiteOptions = {}): Promise<void> {
  const rows: Row[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product, options)));
  const suite = `offsite${products.length === 1 ? ` --product ${products[0]!}` : ''}${options.smokeRows === undefined ? '' : ` --smoke=${options.smokeRows}`}`;
  if (options.smokeRows !== undefined) {
    process.stdout.write(`SMOKE RUN (${options.smokeRows.toLocaleString()} rows, ${SMOKE_ROUNDS} rounds): proves the benchmark runs end to end; the figures measure nothing. Do not record them.\n\n`);
  }
  printTable(suite, machine(products), rows);
}
