/**
 * npm run bench -- schema-change [--product mariadb|mysql|both]
 *
 * One index added to bench.orders (4 million rows) while two sessions write to the table
 * (primary-key UPDATEs), three ways, in the same run on the same server:
 *   - by hand, the runbook's statement: `ALTER TABLE … ADD INDEX …, ALGORITHM=INPLACE, LOCK=NONE`;
 *   - pt-online-schema-change (copies the table through triggers, then renames);
 *   - `dbops schema change`: preflight, schema backup, approval (given at once), the
 *     watched build, EXPLAIN verification, the report.
 * For each: the wall time, the writes per second the application got while it ran
 * against the same load with nothing running (after a warm-up), the worst whole second,
 * the slowest single write and failed writes. The index is dropped between runs (not
 * timed). dbops's window is its whole run: preflight, schema backup and approval too.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, type Connection } from 'mysql2/promise';
import { decide } from '../src/client/restores';
import { startSchemaChange } from '../src/client/schemaChange';
import type { Product } from '../src/domain/manifest';
import { parseIndexChange } from '../src/domain/schemaChange';
import type { SchemaChangeResult } from '../src/workflows/schemaChange';
import { benchContext, machine, PRODUCT_NAME, type BenchContext } from './common';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const ALTER = 'ADD INDEX idx_bench (sku, status)';
const WRITERS = 2;
const BASELINE_SECONDS = 15;

interface LoadFigures {
  writes: number;
  seconds: number;
  maxLatency: number;
  errors: number;
  firstError: string | null;
  /** Writes completed in each whole second of the window. */
  perSecond: number[];
}

/** WRITERS sessions updating rows by primary key until stop() (each write timed). */
async function writeLoad(ctx: BenchContext, password: string): Promise<{ stop: () => Promise<LoadFigures> }> {
  const conns: Connection[] = await Promise.all(Array.from({ length: WRITERS }, () => createConnection({ host: '127.0.0.1', port: ctx.server.port, user: 'dbops_restore', password })));
  let stop = false;
  const figures: LoadFigures = { writes: 0, seconds: 0, maxLatency: 0, errors: 0, firstError: null, perSecond: [] };
  const started = process.hrtime.bigint();
  const loops = conns.map(async (conn, w) => {
    for (let i = 0; !stop; i++) {
      const id = 1 + ((i * 7919 + w * 104729) % 4_000_000);
      const t = process.hrtime.bigint();
      try {
        await conn.query('UPDATE bench.orders SET quantity = 1 + (quantity % 9) WHERE id = ?', [id]);
        figures.writes++;
        const second = Math.floor(Number(process.hrtime.bigint() - started) / 1e9);
        figures.perSecond[second] = (figures.perSecond[second] ?? 0) + 1;
      } catch (error) {
        figures.errors++;
        figures.firstError ??= String((error as Error).message).slice(0, 120);
      }
      figures.maxLatency = Math.max(figures.maxLatency, Number(process.hrtime.bigint() - t) / 1e9);
    }
  });
  return {
    stop: async () => {
      stop = true;
      await Promise.all(loops);
      figures.seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // Only whole seconds count; a second with no write at all is a 0.
      figures.perSecond = Array.from({ length: Math.floor(figures.seconds) }, (_, i) => figures.perSecond[i] ?? 0);
      await Promise.all(conns.map((c) => c.end()));
      return figures;
    },
  };
}

async function underLoad(ctx: BenchContext, password: string, what: () => Promise<void>): Promise<{ seconds: number; load: LoadFigures }> {
  const load = await writeLoad(ctx, password);
  const t = process.hrtime.bigint();
  await what();
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return { seconds, load: await load.stop() };
}

async function dropIndex(ctx: BenchContext): Promise<void> {
  await ctx.conn.query('ALTER TABLE bench.orders DROP INDEX idx_bench').catch((e: { errno?: number }) => {
    if (e.errno !== 1091) throw e; // not there
  });
}

function ptOsc(ctx: BenchContext): Promise<void> {
  const args = [`--defaults-file=${ctx.cnf}`, '--alter', ALTER, `h=127.0.0.1,P=${ctx.server.port},D=bench,t=orders`, '--execute', '--recursion-method=none', '--no-check-alter', '--quiet'];
  return new Promise((resolve, reject) => {
    const child = spawn('pt-online-schema-change', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', () => undefined);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pt-online-schema-change exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}

const f1 = (n: number) => n.toFixed(1);
const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;

async function benchmarkProduct(product: Product): Promise<string[]> {
  const name = PRODUCT_NAME[product];
  const say = (s: string) => log(`${name}: ${s}`);
  const ctx = await benchContext(say, product);
  try {
    const password = readFileSync(`${ctx.work}/password`, 'utf8').trim();
    await dropIndex(ctx);
    await ctx.conn.query('ANALYZE TABLE bench.orders');

    say('warming up: the write load for 10 s (not counted)');
    await underLoad(ctx, password, () => new Promise((r) => setTimeout(r, 10_000)));
    say(`baseline: the write load alone for ${BASELINE_SECONDS} s`);
    const baseline = await underLoad(ctx, password, () => new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000)));
    const rate = (l: LoadFigures) => l.writes / l.seconds;
    const worst = (l: LoadFigures) => (l.perSecond.length ? Math.min(...l.perSecond) : 0);

    say('by hand: ALTER TABLE … ALGORITHM=INPLACE, LOCK=NONE');
    const plain = await underLoad(ctx, password, async () => {
      await ctx.conn.query(`ALTER TABLE bench.orders ${ALTER}, ALGORITHM=INPLACE, LOCK=NONE`);
    });
    await dropIndex(ctx);

    say('pt-online-schema-change');
    let osc: { seconds: number; load: LoadFigures } | string;
    try {
      osc = await underLoad(ctx, password, () => ptOsc(ctx));
    } catch (error) {
      osc = (error as Error).message;
      say(`pt-online-schema-change failed: ${osc}`);
    }
    await dropIndex(ctx);

    say('dbops schema change');
    const config = ctx.configFor('schema', undefined, { approvers: { 'schema-change': ['bench'] }, allowSelfApproval: ['schema-change'], schemaChange: { watchFor: '0s', diskHeadroomGiB: 1 } });
    let result: SchemaChangeResult | null = null;
    const ours = await ctx.withWorker(config, () =>
      underLoad(ctx, password, async () => {
        const handle = await startSchemaChange(ctx.temporal.client, config, {
          cluster: 'bench',
          database: 'bench',
          change: parseIndexChange(`ALTER TABLE orders ${ALTER}`, 'bench'),
          verifyQueries: ["SELECT id, status FROM orders WHERE sku = 'SKU-000042' AND status = 'paid'"],
          requestedBy: 'bench',
        });
        for (;;) {
          const ok = await decide(ctx.temporal.client, handle.workflowId, 'approve', 'bench', 'bench').then(
            () => true,
            () => false,
          );
          if (ok) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        result = (await handle.result()) as SchemaChangeResult;
      }),
    );
    await dropIndex(ctx);
    const r = result as SchemaChangeResult | null;
    if (r?.status !== 'done') throw new Error(`dbops schema change ended ${r?.status}: ${r?.why}`);
    const build = r.build?.seconds ?? 0;

    const row = (method: string, x: { seconds: number; load: LoadFigures } | string, extra = '') =>
      typeof x === 'string'
        ? `| ${name} | ${method} | failed: ${x.slice(0, 200)} | | | | | |`
        : `| ${name} | ${method} | ${f1(x.seconds)}${extra} | **${(x.seconds / plain.seconds).toFixed(2)}** | ${f1(rate(x.load))} (${Math.round((rate(x.load) / rate(baseline.load)) * 100)} %) | ${worst(x.load)} | ${ms(x.load.maxLatency)} | ${x.load.errors}${x.load.firstError ? ` (${x.load.firstError})` : ''} |`;
    return [
      `| ${name} | write load alone | ${BASELINE_SECONDS} | — | ${f1(rate(baseline.load))} (100 %) | ${worst(baseline.load)} | ${ms(baseline.load.maxLatency)} | ${baseline.load.errors} |`,
      row('ALTER … INPLACE, LOCK=NONE by hand', plain),
      row('pt-online-schema-change', osc),
      row('dbops schema change (whole run)', ours, ` (build ${f1(build)})`),
    ];
  } finally {
    await ctx.close();
  }
}

export async function runSchemaChangeBenchmark(products: Product[]): Promise<void> {
  const rows: string[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product)));
  process.stdout.write(
    [
      `Machine: ${machine(products)}`,
      `Command: npm run bench -- schema-change   (${new Date().toISOString().slice(0, 10)}); ${WRITERS} sessions updating bench.orders (4,000,000 rows) by primary key throughout`,
      '',
      '| product | method | seconds | / by hand | writes/s during (vs alone) | worst second (writes) | slowest write | write errors |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
    ].join('\n') + '\n',
  );
}
