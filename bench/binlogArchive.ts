/**
 * npm run bench -- binlog-archive [--product mariadb|mysql|both]   (both by default)
 *
 * Does the continuous binlog archive keep up with a sustained write load? On the
 * reference dataset (4 million order rows), for each product on its private server:
 * UPDATE passes over bench.orders, 20,000 rows per transaction, for LOAD_SECONDS, while
 * two streams read the same binary log:
 *   1. dbops: the binlog-archive workflow (a worker in this process), with the default
 *      flushAfter (30 s) and with 2 s;
 *   2. the peer: `mysqlbinlog --read-from-remote-server --raw --stop-never` into a
 *      folder, what a DBA would run by hand (no cutting, no compression, no checksums, no
 *      upload, nothing published: bytes on a local disk).
 * Every second the server's binlog end, the bytes the peer has, and the end of what dbops
 * has published are sampled. Reported: the binlog rate the load produced, how far behind
 * each stream was (bytes; for dbops also the age of the newest transaction known to be
 * archived, the RPO), and, once the load stops, the seconds until each has everything
 * (the "dbops s" / "peer s" columns). The peer is ahead by construction (it publishes
 * nothing); the question is whether dbops stays under its RPO target (60 s) under load.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { ensureBinlogArchive, controlBinlogArchive } from '../src/client/binlogArchive';
import { BinlogArchiveSchema, type DbopsConfig } from '../src/config/schema';
import { binlogNumber } from '../src/domain/chain';
import type { Product } from '../src/domain/manifest';
import { openRepository } from '../src/repository';
import { BinlogArchive } from '../src/repository/binlogArchive';
import { benchContext, machine, PRODUCT_NAME, REFERENCE_ROWS, root, type BenchContext } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const LOAD_SECONDS = 60;
const CHUNK = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  at: number;
  server: number;
  peer: number;
  dbops: number;
  coveredAgeSeconds: number | null;
}

/** Bytes of binlog in these files (the last one's size is the server's position in it). */
function absolute(files: ReadonlyArray<{ name: string; size: number }>): number {
  return files.reduce((n, f) => n + f.size, 0);
}

async function serverFiles(ctx: BenchContext): Promise<Array<{ name: string; size: number }>> {
  const [rows] = (await ctx.conn.query('SHOW BINARY LOGS')) as unknown as [Array<{ Log_name: string; File_size: string }>];
  return rows.map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
}

function peerBytes(dir: string, from: number): number {
  return readdirSync(dir)
    .filter((n) => (binlogNumber(n)?.number ?? -1) >= from)
    .reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
}

/** What dbops has published of the files from `from` on: each file's segments end. */
async function publishedBytes(archive: BinlogArchive, from: number): Promise<number> {
  const timelines = await archive.timelines();
  const t = timelines[timelines.length - 1];
  if (!t) return 0;
  let total = 0;
  for (const file of await archive.files(t.timeline)) {
    if ((binlogNumber(file)?.number ?? -1) < from) continue;
    const segments = await archive.segments(t.timeline, file);
    total += segments.reduce((n, s) => Math.max(n, s.end), 0);
  }
  return total;
}

async function oneRun(ctx: BenchContext, flushAfter: string, round: number): Promise<{ samples: Sample[]; catchUp: { peer: number; dbops: number }; mibPerSecond: number }> {
  const config: DbopsConfig = ctx.configFor(`archive-${flushAfter}-${round}`);
  config.clusters[0]!.binlogArchive = BinlogArchiveSchema.parse({ enabled: true, flushAfter });
  await ctx.conn.query('FLUSH BINARY LOGS');
  const files0 = await serverFiles(ctx);
  const startFile = files0[files0.length - 1]!.name;
  // Each run's archive starts from the server's oldest file: make that this run's first one.
  await ctx.conn.query('PURGE BINARY LOGS TO ?', [startFile]);
  const from = binlogNumber(startFile)!.number;
  const repository = openRepository(config);
  const archive = new BinlogArchive(repository.storage, 'bench');
  const peerDir = path.join(ctx.work, `peer-${flushAfter}-${round}`);
  mkdirSync(peerDir, { recursive: true });
  let peer: ChildProcess | null = null;
  try {
    return await ctx.withWorker(config, async () => {
      await ensureBinlogArchive(ctx.temporal.client, config, 'bench', 'bench');
      for (let i = 0; i < 600 && (await archive.status()) === null; i++) await sleep(100);
      const serverIdFlag = ctx.product === 'mariadb' ? '--stop-never-slave-server-id=777' : '--connection-server-id=777';
      peer = spawn(ctx.tools.binlog, [`--defaults-extra-file=${ctx.cnf}`, '--read-from-remote-server', '--raw', '--stop-never', serverIdFlag, `--result-file=${peerDir}${path.sep}`, startFile], { stdio: 'ignore' });

      const samples: Sample[] = [];
      let stop = false;
      let pass = 0;
      const load = (async () => {
        while (!stop) {
          pass += 1;
          for (let lo = 1; lo <= REFERENCE_ROWS && !stop; lo += CHUNK) {
            await ctx.conn.query(
              `UPDATE bench.orders SET status = ELT(1 + (id + ${pass}) % 6, 'new','paid','shipped','delivered','cancelled','refunded'), updated_at = updated_at + INTERVAL 1 MINUTE WHERE id BETWEEN ${lo} AND ${lo + CHUNK - 1}`,
            );
          }
        }
      })();
      const sampler = await root(ctx.server, ctx.product);
      const sample = async (): Promise<Sample> => {
        const [rows] = (await sampler.query('SHOW BINARY LOGS')) as unknown as [Array<{ Log_name: string; File_size: string }>];
        const files = rows.map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
        const status = await archive.status();
        return {
          at: Date.now(),
          server: absolute(files.filter((f) => (binlogNumber(f.name)?.number ?? -1) >= from)),
          peer: peerBytes(peerDir, from),
          dbops: await publishedBytes(archive, from),
          coveredAgeSeconds: status?.coveredUntil ? (Date.now() - Date.parse(status.coveredUntil)) / 1000 : null,
        };
      };
      const started = Date.now();
      while (Date.now() - started < LOAD_SECONDS * 1000) {
        samples.push(await sample());
        await sleep(1000);
      }
      stop = true;
      await load;
      const end = await sample();
      const loadEnd = Date.now();
      let peerDone = 0;
      let dbopsDone = 0;
      for (let i = 0; i < 1200 && (!peerDone || !dbopsDone); i++) {
        const s = await sample();
        samples.push(s);
        if (!peerDone && s.peer >= end.server) peerDone = (Date.now() - loadEnd) / 1000;
        if (!dbopsDone && s.dbops >= end.server) dbopsDone = (Date.now() - loadEnd) / 1000;
        await sleep(250);
      }
      await sampler.end();
      await controlBinlogArchive(ctx.temporal.client, config, 'bench', 'stop', 'bench');
      await ctx.temporal.client.workflow.getHandle('binlog-archive/bench').result().catch(() => undefined);
      return { samples, catchUp: { peer: peerDone || Number.NaN, dbops: dbopsDone || Number.NaN }, mibPerSecond: end.server / (1 << 20) / ((loadEnd - started) / 1000) };
    });
  } finally {
    (peer as ChildProcess | null)?.kill('SIGTERM');
    repository.close();
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
}

async function benchmarkProduct(product: Product): Promise<Row[]> {
  const name = PRODUCT_NAME[product];
  const ctx = await benchContext((s) => log(`${name}: ${s}`), product);
  const rows: Row[] = [];
  try {
    for (const flushAfter of ['30s', '2s']) {
      log(`${name}: ${LOAD_SECONDS} s of UPDATE passes, archive flushAfter ${flushAfter}`);
      const r = await oneRun(ctx, flushAfter, 1);
      const during = r.samples.slice(0, LOAD_SECONDS);
      const mib = (b: number) => (b / (1 << 20)).toFixed(1);
      const dbopsBehind = during.map((s) => s.server - s.dbops);
      const peerBehind = during.map((s) => s.server - s.peer);
      const ages = during.map((s) => s.coveredAgeSeconds).filter((a): a is number => a !== null);
      rows.push({
        product: name,
        what: `archive under load, flushAfter ${flushAfter}: seconds until everything is in after the load stops`,
        peer: 'mysqlbinlog --read-from-remote-server --raw --stop-never > folder',
        runs: [{ peer: r.catchUp.peer, ours: r.catchUp.dbops }],
        note:
          `load wrote ${r.mibPerSecond.toFixed(1)} MiB/s of binlog; behind during the load: dbops max ${mib(Math.max(...dbopsBehind))} MiB (p95 ${mib(percentile(dbopsBehind, 0.95))}), ` +
          `peer max ${mib(Math.max(...peerBehind))} MiB; dbops RPO (age of the newest archived transaction) max ${Math.max(...ages).toFixed(1)} s, p95 ${percentile(ages, 0.95).toFixed(1)} s`,
      });
    }
  } finally {
    await ctx.close();
  }
  return rows;
}

export async function runBinlogArchiveBenchmark(products: Product[]): Promise<void> {
  const rows: Row[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product)));
  printTable('binlog-archive', machine(products), rows);
}
