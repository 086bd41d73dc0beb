/**
 * npm run bench -- physical   (both products; --product mariadb|mysql)
 *
 * Physical fulls on the reference dataset:
 *   1. backup: the full backup WORKFLOW with fullBackup.engine=physical (two rounds,
 *      alternating which side goes first) against the product's tool by hand into a file:
 *      MariaDB `mariadb-backup --backup --stream=xbstream --parallel=2 | zstd -T0 -3`;
 *      MySQL `CLONE LOCAL DATA DIRECTORY` then `tar | zstd -T0 -3`;
 *   2. restore to a running server: unpack (digest checked) + prepare + start a private
 *      server on the files, as a drill does, against (a) the same steps by hand (`zstd -dc |
 *      mbstream -x` or `tar -x`, `mariadb-backup --prepare`, no start) and (b) the logical
 *      restore of the same data: the point-in-time restore workflow's load of a
 *      single-stream full and of a 2-thread chunked full.
 * Not part of npm test. Prints Markdown for bench/RESULTS.md.
 */
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { totalRawBytes, totalStoredBytes, type Manifest, type Product } from '../src/domain/manifest';
import { formatBytes } from '../src/domain/naming';
import { provisionSandbox, teardownSandbox } from '../src/mysql/drillServer';
import { restorePhysicalFiles, type PhysicalSource } from '../src/mysql/physicalRestore';
import { openRepository } from '../src/repository';
import { backupVia } from './backup';
import { loadPhase } from './parallel';
import { benchContext, machine, PRODUCT_NAME, q, sh, timed, type BenchContext } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

function peerBackup(ctx: BenchContext, out: string, scratch: string): string {
  if (ctx.product === 'mariadb') {
    return `mariadb-backup --defaults-extra-file=${q(ctx.cnf)} --backup --stream=xbstream --parallel=2 --target-dir=${q(scratch)} 2>/dev/null | zstd -T0 -3 -q > ${q(out)}`;
  }
  const clone = path.join(scratch, 'clone');
  return `${q(ctx.tools.client)} --defaults-extra-file=${q(ctx.cnf)} -e "CLONE LOCAL DATA DIRECTORY = '${clone}'" && tar -C ${q(clone)} -cf - . | zstd -T0 -3 -q > ${q(out)} && rm -rf ${q(clone)}`;
}

function peerRestore(ctx: BenchContext, file: string, dir: string): string {
  return ctx.product === 'mariadb'
    ? `zstd -dc ${q(file)} | mbstream -x -C ${q(dir)} && mariadb-backup --prepare --target-dir=${q(dir)} --use-memory=256M 2>/dev/null`
    : `zstd -dc ${q(file)} | tar -xf - -C ${q(dir)}`;
}

async function benchmarkProduct(product: Product): Promise<Row[]> {
  const name = PRODUCT_NAME[product];
  const say = (s: string) => log(`${name}: ${s}`);
  const ctx = await benchContext(say, product);
  const rows: Row[] = [];
  const drop = (db: string) => ctx.conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
  process.env.DBOPS_DRILL_DIR = path.join(ctx.work, 'drills');
  mkdirSync(process.env.DBOPS_DRILL_DIR, { recursive: true, mode: 0o711 });
  try {
    // 1. Backups.
    const config = ctx.configFor('physical', undefined, { fullBackup: { engine: 'physical', threads: 2 } });
    const runs: Array<{ peer: number; ours: number }> = [];
    let full: Manifest | null = null;
    const peerFile = path.join(ctx.work, 'peer-backup.zst');
    for (let round = 0; round < 2; round++) {
      const scratch = path.join(ctx.work, `peer-scratch-${round}`);
      rmSync(scratch, { recursive: true, force: true });
      mkdirSync(scratch);
      const peer = () => timed(() => sh(peerBackup(ctx, peerFile, scratch)));
      const ours = () => backupVia(ctx, config, 'full');
      say(`physical backup, round ${round + 1}`);
      const [p, o] = round === 0 ? [await peer(), await ours()] : await ours().then(async (x) => [await peer(), x] as const);
      runs.push({ peer: p.seconds, ours: o.seconds });
      full = o.value;
      say(`  by hand ${p.seconds.toFixed(1)} s, dbops ${o.seconds.toFixed(1)} s (${formatBytes(totalRawBytes(o.value))} of files, stored ${formatBytes(totalStoredBytes(o.value))})`);
    }
    const m = full!;
    rows.push({
      product: name,
      what: `physical full backup, ${formatBytes(totalRawBytes(m))} of files`,
      peer: product === 'mariadb' ? 'mariadb-backup --stream=xbstream --parallel=2 | zstd -T0 -3' : 'CLONE LOCAL; tar | zstd -T0 -3',
      runs,
      note: `dbops: the workflow (raw and stored sha256, zstd -t as written, published), stored ${formatBytes(totalStoredBytes(m))}`,
    });

    // 2. Restores to a running server.
    const repository = openRepository(config);
    const { backups } = await repository.reader().scan('bench');
    const entry = backups.find((b) => b.manifest.id === m.id)!;
    const artifact = m.artifacts[0]!;
    const source: PhysicalSource = { fullId: m.id, fullPath: entry.relativePath, format: m.physical!.format, artifact: artifact.name, rawSha256: artifact.rawSha256, rawSize: artifact.rawSize };
    const handDir = path.join(ctx.work, 'peer-restore');
    rmSync(handDir, { recursive: true, force: true });
    mkdirSync(handDir);
    const byHand = await timed(() => sh(peerRestore(ctx, peerFile, handDir)));
    rmSync(handDir, { recursive: true, force: true });
    let unpackSeconds = 0;
    const physical = await timed(async () => {
      const sandbox = await provisionSandbox(`bench-physical-${product}`, 977, undefined, product, async (datadir) => {
        const r = await restorePhysicalFiles({ source, storage: repository.storage, datadir });
        unpackSeconds = (r.durationMs.unpack + r.durationMs.prepare) / 1000;
      });
      return sandbox;
    });
    await teardownSandbox(physical.value.baseDir);
    say(`physical restore: unpack + prepare ${unpackSeconds.toFixed(1)} s, to a running server ${physical.seconds.toFixed(1)} s; by hand (no start) ${byHand.seconds.toFixed(1)} s`);
    rows.push({
      product: name,
      what: 'physical restore, unpack + prepare (no start)',
      peer: product === 'mariadb' ? 'zstd -dc | mbstream -x; mariadb-backup --prepare' : 'zstd -dc | tar -x',
      runs: [{ peer: byHand.seconds, ours: unpackSeconds }],
      note: 'dbops: restorePhysicalFiles (raw sha256 checked on the way)',
    });

    // A run stopped half way may have left its targets behind.
    await drop('bench_single');
    await drop('bench_par');
    const single = ctx.configFor('single', undefined, { restoreLoad: { threads: 1 } });
    await backupVia(ctx, single, 'full');
    const singleLoad = await loadPhase(ctx, single, 'bench_single');
    await drop('bench_single');
    const parallel = ctx.configFor('parallel', undefined, { fullBackup: { engine: 'parallel', threads: 2, chunkRows: 500_000 }, restoreLoad: { threads: 2 } });
    await backupVia(ctx, parallel, 'full');
    const parallelLoad = await loadPhase(ctx, parallel, 'bench_par');
    await drop('bench_par');
    say(`logical loads: single stream ${singleLoad.toFixed(1)} s, 2 threads ${parallelLoad.toFixed(1)} s`);
    rows.push({
      product: name,
      what: 'physical restore to a running server, against the single-stream logical load',
      peer: 'dbops single-stream load (PITR workflow load phase)',
      runs: [{ peer: singleLoad, ours: physical.seconds }],
      note: 'dbops: unpack + digest + prepare + start a private server + lock-down; the target is ≤ 0.25',
    });
    rows.push({
      product: name,
      what: 'physical restore to a running server, against the 2-thread chunked load',
      peer: 'dbops parallel load, 2 threads',
      runs: [{ peer: parallelLoad, ours: physical.seconds }],
      note: 'the fastest logical restore dbops has',
    });
    return rows;
  } finally {
    await ctx.close();
  }
}

export async function runPhysicalBenchmark(products: Product[]): Promise<void> {
  const rows: Row[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product)));
  printTable('physical', machine(products), rows);
}
