/**
 * npm run bench -- parallel   (both products; --product mariadb|mysql)
 *
 * The parallel (chunked) full backup and its parallel load, on the reference dataset,
 * against mydumper / myloader with the same thread count and against dbops's own
 * single-stream dump and load, at 1 and 2 threads:
 *   1. backup: the full backup WORKFLOW with fullBackup.engine=parallel (N sessions, one
 *      snapshot, zstd -3 chunks, checksummed, published) against `mydumper -t N --rows
 *      500000 -c` (gzip: the only compression mydumper 0.10 has) into a folder;
 *   2. load: the point-in-time restore WORKFLOW's load phase (restoreLoad.threads=N; schema,
 *      chunks in parallel, secondary indexes built after, triggers) against `myloader -t N
 *      -e` (binary log on, as dbops's restore next to live data keeps it) from mydumper's
 *      folder, and against the same workflow loading the single-stream dump;
 *   3. resume: a chunked load stopped once half its chunks are in (its client sessions
 *      killed, as a dead worker leaves them), then resumed from its checkpoint, against the
 *      same load from scratch.
 * DBOPS_BENCH_PARTS=backup (or load, resume, comma-separated) runs only those parts; the
 * backups always run (the loads need them).
 * Not part of npm test. Prints Markdown for bench/RESULTS.md.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startPitr } from '../src/client/restores';
import type { DbopsConfig } from '../src/config/schema';
import { totalRawBytes, totalStoredBytes, type Manifest, type Product } from '../src/domain/manifest';
import { formatBytes } from '../src/domain/naming';
import { planRestore } from '../src/domain/restorePlan';
import { restoreDatabase } from '../src/mysql/restore';
import type { LoadCheckpoint } from '../src/mysql/parallelLoad';
import { openRepository } from '../src/repository';
import { backupVia } from './backup';
import { benchContext, machine, PRODUCT_NAME, q, sh, timed, type BenchContext } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** A root defaults file for mydumper / myloader (0600, in the run folder). */
function rootCnf(ctx: BenchContext): string {
  const file = path.join(ctx.work, 'root.cnf');
  const where = ctx.product === 'mysql' ? `host=127.0.0.1\nport=${ctx.server.port}\nprotocol=TCP` : `socket=${ctx.server.socket}`;
  writeFileSync(file, `[client]\nuser=root\n${where}\n`, { mode: 0o600 });
  return file;
}

/** The point-in-time restore workflow's load phase (seconds) of the cluster's newest full into `into`. */
export async function loadPhase(ctx: BenchContext, config: DbopsConfig, into: string): Promise<number> {
  return ctx.withWorker(config, async () => {
    const handle = await startPitr(ctx.temporal.client, config, { cluster: 'bench', database: 'bench', into, target: { kind: 'latest' }, requestedBy: 'bench' });
    const result = (await handle.result()) as { durationMs: { load: number } };
    return result.durationMs.load / 1000;
  });
}

async function benchmarkProduct(product: Product): Promise<Row[]> {
  const name = PRODUCT_NAME[product];
  const say = (s: string) => log(`${name}: ${s}`);
  const ctx = await benchContext(say, product);
  const rows: Row[] = [];
  const drop = (db: string) => ctx.conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
  try {
    const cnf = rootCnf(ctx);
    const fulls: Record<number, Manifest> = {};
    const dumps: Record<number, string> = {};
    const configs: Record<number, DbopsConfig> = {};
    // 1. Backups, two rounds, alternating which side goes first.
    for (const threads of [1, 2]) {
      const runs: Array<{ peer: number; ours: number }> = [];
      for (let round = 0; round < 2; round++) {
        const dir = path.join(ctx.work, `mydumper-${threads}-${round}`);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
        const config = ctx.configFor(`par-${threads}-${round}`, undefined, { fullBackup: { engine: 'parallel', threads, chunkRows: 500_000 }, restoreLoad: { threads } });
        const peer = () => timed(() => sh(`mydumper --defaults-file=${q(cnf)} -B bench -o ${q(dir)} -t ${threads} --rows 500000 -c`));
        const ours = () => backupVia(ctx, config, 'full');
        say(`backup, ${threads} thread(s), round ${round + 1}`);
        const [p, o] = round === 0 ? [await peer(), await ours()] : await ours().then(async (x) => [await peer(), x] as const);
        runs.push({ peer: p.seconds, ours: o.seconds });
        fulls[threads] = o.value;
        dumps[threads] = dir;
        configs[threads] = config;
        say(`  mydumper ${p.seconds.toFixed(1)} s, dbops ${o.seconds.toFixed(1)} s (${o.value.parallel?.chunks.length} chunks, ${formatBytes(totalStoredBytes(o.value))})`);
      }
      const m = fulls[threads]!;
      rows.push({
        product: name,
        what: `parallel full backup, ${threads} thread(s), ${formatBytes(totalRawBytes(m))} SQL`,
        peer: `mydumper -t ${threads} --rows 500000 -c`,
        runs,
        note: `dbops: the workflow, ${m.parallel?.chunks.length} zstd -3 chunks, stored ${formatBytes(totalStoredBytes(m))}`,
      });
    }
    const parts = new Set((process.env.DBOPS_BENCH_PARTS ?? 'backup,load,resume').split(','));
    if (!parts.has('load') && !parts.has('resume')) return rows;
    // The single-stream full, for the load comparison.
    const single = ctx.configFor('single', undefined, { restoreLoad: { threads: 1 } });
    await backupVia(ctx, single, 'full');

    // 2. Loads, one round each (each is ~a minute of the server's time).
    const singleLoad = parts.has('load') ? await loadPhase(ctx, single, 'bench_single') : 0;
    await drop('bench_single');
    if (parts.has('load')) say(`single-stream load ${singleLoad.toFixed(1)} s`);
    for (const threads of parts.has('load') ? [1, 2] : []) {
      await drop('bench_myl');
      const peer = await timed(() => sh(`myloader --defaults-file=${q(cnf)} -d ${q(dumps[threads]!)} -B bench_myl -t ${threads} -e`));
      await drop('bench_myl');
      const ours = await loadPhase(ctx, configs[threads]!, `bench_par${threads}`);
      await drop(`bench_par${threads}`);
      say(`load, ${threads} thread(s): myloader ${peer.seconds.toFixed(1)} s, dbops ${ours.toFixed(1)} s`);
      rows.push({ product: name, what: `parallel load, ${threads} thread(s)`, peer: `myloader -t ${threads} -e`, runs: [{ peer: peer.seconds, ours }], note: 'dbops: the restore workflow’s load phase (schema, chunks, indexes after, triggers), binlog on' });
      rows.push({ product: name, what: `parallel load, ${threads} thread(s), against dbops single-stream`, peer: 'dbops single-stream load (one session)', runs: [{ peer: singleLoad, ours }], note: 'the same workflow loading the one-artifact dump' });
    }

    // 3. Resume: stopped at half, resumed, against from scratch (mysql layer: the code the activity runs).
    if (!parts.has('resume')) return rows;
    const config = configs[2]!;
    const repository = openRepository(config);
    const { backups } = await repository.reader().scan('bench');
    const outcome = planRestore({ cluster: 'bench', database: 'bench', target: { kind: 'latest' }, backups: backups.filter((b) => b.manifest.id === fulls[2]!.id), chainState: null, now: new Date() });
    if (!outcome.ok) throw new Error(outcome.reason);
    const plan = { ...outcome.plan, binlogs: [], stop: { kind: 'end' as const } };
    const base = { cluster: config.clusters[0]!, product, storage: repository.storage, plan, confine: false, onProgress: () => undefined };
    const scratch = await timed(() => restoreDatabase({ ...base, into: 'bench_scratch', marker: 'scratch' }));
    await drop('bench_scratch');
    const total = plan.full.parallel!.chunks.length;
    let left: LoadCheckpoint | null = null;
    const stop = new AbortController();
    const first = await timed(() =>
      restoreDatabase({ ...base, into: 'bench_resume', marker: 'resume', signal: stop.signal, onCheckpoint: (c) => {
        left = structuredClone(c);
        if (c.done.length >= total / 2) stop.abort();
      } }).catch(() => null),
    );
    const resumed = await timed(() => restoreDatabase({ ...base, into: 'bench_resume', marker: 'resume', resume: left }));
    await drop('bench_resume');
    say(`resume: from scratch ${scratch.seconds.toFixed(1)} s; stopped after ${first.seconds.toFixed(1)} s; resumed in ${resumed.seconds.toFixed(1)} s (${resumed.value.parallel?.resumed} chunks found in place)`);
    rows.push({
      product: name,
      what: `interrupted load resumed, 2 threads, ${total} chunks, stopped at half`,
      peer: 'the same load from scratch',
      runs: [{ peer: scratch.seconds, ours: resumed.seconds }],
      note: `dbops: the resumed attempt only (the stopped one took ${first.seconds.toFixed(1)} s)`,
    });
    return rows;
  } finally {
    await ctx.close();
  }
}

export async function runParallelBenchmark(products: Product[]): Promise<void> {
  const rows: Row[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product)));
  printTable('parallel', machine(products), rows);
}
