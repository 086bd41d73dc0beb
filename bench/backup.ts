/**
 * npm run bench -- backup [--product mariadb|mysql|both]   (both by default)
 *
 * On the reference dataset (4 million order rows, ~0.5 GB as SQL), for each product on a
 * private server of its own (one after the other, never both at once):
 *   1. the full backup WORKFLOW end to end (lock, inspect, dump scanned, hashed, compressed
 *      and test-decompressed in one pass, re-read of the stored sha256, publish) against the product's own dump tool as a DBA runs
 *      it for a point-in-time-recoverable full, piped into `zstd -T0 -3`:
 *        MariaDB: `mariadb-dump --single-transaction --master-data=2 --gtid …`
 *        MySQL:   `mysqldump --single-transaction --source-data=2 --set-gtid-purged=COMMENTED …`
 *   2. the space saving of the stored full (target: >= 70 %);
 *   3. the incremental backup WORKFLOW over >= 1 GB of binlog against a raw remote copy
 *      of the same files with the product's binlog tool (`mariadb-binlog` / `mysqlbinlog`
 *      `--read-from-remote-server --raw`).
 * Each pair runs twice, alternating; the best of each side is compared.
 */
import { cpSync, mkdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { startBackup, waitForManifest } from '../src/client/backups';
import type { DbopsConfig } from '../src/config/schema';
import { localRepositoryRoot } from '../src/repository';
import { spaceSaving, totalRawBytes, totalStoredBytes, type Manifest, type Product } from '../src/domain/manifest';
import { formatBytes } from '../src/domain/naming';
import { benchContext, machine, PRODUCT_NAME, q, sh, timed, writeBinlog, type BenchContext } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

let tick = 0;
/** Runs one backup workflow; the clock starts once the worker is up (bundling is not timed). */
export async function backupVia(ctx: BenchContext, cfg: DbopsConfig, type: 'full' | 'incremental'): Promise<{ seconds: number; value: Manifest }> {
  return ctx.withWorker(cfg, () =>
    timed(async () =>
      waitForManifest(await startBackup(ctx.temporal.client, cfg, type, { cluster: 'bench', requestedBy: 'bench' }, new Date(Date.now() + ++tick * 1000))),
    ),
  );
}

/** The peer's dump: the product's dump tool with what a PITR-able full needs (the offsite bench pipes the same command). */
export function peerDumpCommand(ctx: BenchContext): string {
  const common = '--single-transaction --routines --events --triggers --hex-blob --quick';
  const position = ctx.product === 'mysql' ? '--source-data=2 --set-gtid-purged=COMMENTED' : '--master-data=2 --gtid';
  return `${q(ctx.tools.dump)} --defaults-extra-file=${q(ctx.cnf)} ${common} ${position} --databases bench`;
}

/** The peer's full: its dump into zstd, into a file. */
function peerFullCommand(ctx: BenchContext, out: string): string {
  return `${peerDumpCommand(ctx)} | zstd -T0 -3 -q > ${q(out)}`;
}

async function benchmarkProduct(product: Product): Promise<Row[]> {
  const name = PRODUCT_NAME[product];
  const say = (s: string) => log(`${name}: ${s}`);
  const ctx = await benchContext(say, product);
  const rows: Row[] = [];
  try {
    const config = ctx.configFor('repo');
    const peerFull = path.join(ctx.work, 'peer-full.sql.zst');
    const fullRuns: Array<{ peer: number; ours: number; manifest: Manifest }> = [];
    for (let i = 0; i < 2; i++) {
      say(`full backup, round ${i + 1}`);
      const p = await timed(() => sh(peerFullCommand(ctx, peerFull)));
      const o = await backupVia(ctx, config, 'full');
      fullRuns.push({ peer: p.seconds, ours: o.seconds, manifest: o.value });
      say(`  peer ${p.seconds.toFixed(1)} s, dbops ${o.seconds.toFixed(1)} s`);
    }
    const full = fullRuns[fullRuns.length - 1]!.manifest;
    const dumpTool = path.basename(ctx.tools.dump);
    rows.push({
      product: name,
      what: `full backup, ${full.tables.reduce((n, t) => n + t.rows, 0).toLocaleString()} rows, ${formatBytes(totalRawBytes(full))} SQL`,
      peer: `${dumpTool} --single-transaction … | zstd -T0 -3`,
      runs: fullRuns,
      note: `stored ${formatBytes(totalStoredBytes(full))} (peer ${formatBytes(statSync(peerFull).size)}); space saving ${(spaceSaving(full) * 100).toFixed(1)} %; dbops also scans and hashes the SQL, test-decompresses what it stores (zstd -t) and re-reads the stored sha256 before publishing`,
    });

    const files = await writeBinlog(ctx.conn, full.snapshot!.file, 1.05 * 2 ** 30, say);
    say(`binlog since the full: ${files.length} files, ${formatBytes(files.reduce((n, f) => n + f.size, 0))}`);
    const incRuns: Array<{ peer: number; ours: number; manifest: Manifest }> = [];
    for (let i = 0; i < 2; i++) {
      say(`incremental, round ${i + 1}`);
      const peerDir = path.join(ctx.work, `peer-binlogs-${i}`);
      mkdirSync(peerDir);
      const p = await timed(() =>
        sh(`${q(ctx.tools.binlog)} --defaults-extra-file=${q(ctx.cnf)} --read-from-remote-server --raw --result-file=${q(peerDir + '/')} ${files.map((f) => q(f.name)).join(' ')}`),
      );
      rmSync(peerDir, { recursive: true, force: true });
      // A fresh repository holding only the full, so each run copies the same binlogs.
      const cfg = ctx.configFor(`repo-inc-${i}`);
      cpSync(path.join(localRepositoryRoot(config.repository), 'bench', 'full'), path.join(localRepositoryRoot(cfg.repository), 'bench', 'full'), { recursive: true });
      const o = await backupVia(ctx, cfg, 'incremental');
      incRuns.push({ peer: p.seconds, ours: o.seconds, manifest: o.value });
      say(`  peer ${p.seconds.toFixed(1)} s, dbops ${o.seconds.toFixed(1)} s`);
    }
    const inc = incRuns[incRuns.length - 1]!.manifest;
    rows.push({
      product: name,
      what: `incremental, ${inc.binlogs!.files.length} binlogs, ${formatBytes(totalRawBytes(inc))}`,
      peer: `${path.basename(ctx.tools.binlog)} --read-from-remote-server --raw (same files)`,
      runs: incRuns,
      note: `stored ${formatBytes(totalStoredBytes(inc))} (${(spaceSaving(inc) * 100).toFixed(1)} % saved; the peer stores raw); dbops also scans, hashes and test-decompresses`,
    });
    return rows;
  } finally {
    await ctx.close();
  }
}

/** Each product in turn, on its own server; one table with a row pair per product. */
export async function runBackupBenchmark(products: Product[] = ['mariadb']): Promise<void> {
  const rows: Row[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product)));
  printTable(products.length === 1 ? `backup --product ${products[0]!}` : 'backup', machine(products), rows);
}
