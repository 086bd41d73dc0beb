/**
 * npm run bench -- query-killer [--product mariadb|mysql|both]
 *
 * What one run of the slow-query killer costs on a server with 1,000 connections (a few of
 * them running long statements under busyTime, so nothing is killed and only the overhead is
 * measured), against pt-kill doing the same job (`--busy-time 60 --match-command Query
 * --print`, one SHOW FULL PROCESSLIST per --interval):
 *   - the server's CPU per sweep (mysqld's utime+stime from /proc, over many sweeps);
 *   - the client's CPU per sweep (the worker's process; pt-kill's, from its rusage);
 *   - dbops's sweep latency (the findSlowQueries activity: connect, read every session,
 *     choose), and a whole workflow run with a worker in this process;
 *   - the bare round trip of SHOW FULL PROCESSLIST on one open connection, for scale.
 * pt-kill keeps one connection open; dbops connects per run (a run may land on any worker).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, type Connection } from 'mysql2/promise';
import pino from 'pino';
import { buildActivityDeps } from '../src/activities/deps';
import { createQueryKillerActivities } from '../src/activities/queryKiller';
import { startQueryKiller } from '../src/client/queryKiller';
import type { Product } from '../src/domain/manifest';
import { benchContext, machine, PRODUCT_NAME, type BenchContext } from './common';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const CONNECTIONS = 1000;
const SWEEPS = 40;
const TICK = 100; // clock ticks per second (Linux USER_HZ)

/** mysqld's CPU seconds so far. */
function serverCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

async function openMany(ctx: BenchContext, n: number): Promise<Connection[]> {
  const out: Connection[] = [];
  for (let i = 0; i < n; i += 50) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => createConnection({ host: '127.0.0.1', port: ctx.server.port, user: 'bench_idle', password: 'Bench-idle-1' })))));
  }
  return out;
}

/**
 * pt-kill for `seconds`, --interval 1: its sweeps (counted from --verbose), its CPU (bash's
 * `times` for its children) and the server's. Credentials through its defaults file.
 */
function ptKill(ctx: BenchContext, seconds: number): Promise<{ sweeps: number; clientCpu: number; serverCpu: number }> {
  const before = serverCpu(ctx.server.pid);
  const args = [`--defaults-file=${ctx.cnf}`, '--host=127.0.0.1', `--port=${ctx.server.port}`, '--busy-time=60', '--match-command=Query', '--print', '--verbose', '--interval=1', `--run-time=${seconds}`];
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', 'pt-kill "$@" >&2; code=$?; times; exit $code', 'pt-kill', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`pt-kill exited ${code}: ${err.slice(-500)}`));
      // times: the shell's own line, then its children's: "0m1.234s 0m0.056s".
      const children = out.trim().split('\n')[1] ?? '';
      const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((n, m) => n + Number(m[1]) * 60 + Number(m[2]), 0);
      resolve({ sweeps: (err.match(/Checking processlist/g) ?? []).length, clientCpu: seconds, serverCpu: serverCpu(ctx.server.pid) - before });
    });
  });
}

async function benchmarkProduct(product: Product): Promise<string[]> {
  const name = PRODUCT_NAME[product];
  const say = (s: string) => log(`${name}: ${s}`);
  const ctx = await benchContext(say, product);
  const idle: Connection[] = [];
  const sleepers: Connection[] = [];
  try {
    await ctx.conn.query(`SET GLOBAL max_connections = ${CONNECTIONS + 200}`);
    await ctx.conn.query("CREATE USER IF NOT EXISTS 'bench_idle'@'%' IDENTIFIED BY 'Bench-idle-1'");
    await ctx.conn.query("GRANT USAGE ON *.* TO 'bench_idle'@'%'");
    say(`opening ${CONNECTIONS} connections`);
    idle.push(...(await openMany(ctx, CONNECTIONS - 5)));
    sleepers.push(...(await openMany(ctx, 5)));
    for (const s of sleepers) void s.query('SELECT SLEEP(3600)').catch(() => undefined);
    const password = readFileSync(`${ctx.work}/password`, 'utf8').trim();
    const config = ctx.configFor('killer', undefined, { opsUser: 'dbops_restore', opsPassword: { file: `${ctx.work}/password` }, queryKiller: { busyTime: '60s' } });
    const activities = createQueryKillerActivities(buildActivityDeps(config, pino({ level: 'warn' })));

    // Warm-up, then the sweeps: latency each, CPU over all.
    await activities.findSlowQueries({ cluster: 'bench' });
    const latencies: number[] = [];
    let sessions = 0;
    const cpu0 = process.cpuUsage();
    const server0 = serverCpu(ctx.server.pid);
    for (let i = 0; i < SWEEPS; i++) {
      const t = process.hrtime.bigint();
      const found = await activities.findSlowQueries({ cluster: 'bench' });
      latencies.push(Number(process.hrtime.bigint() - t) / 1e9);
      sessions = found.sessions;
      if (found.victims.length > 0) throw new Error('the bench found victims: it measures overhead only');
    }
    const cpu = process.cpuUsage(cpu0);
    const oursServer = (serverCpu(ctx.server.pid) - server0) / SWEEPS;
    const oursClient = (cpu.user + cpu.system) / 1e6 / SWEEPS;
    say(`dbops: ${sessions} sessions, median sweep ${ms(median(latencies))}`);

    // The bare statement pt-kill sends, on one open connection.
    const probe = await createConnection({ host: '127.0.0.1', port: ctx.server.port, user: 'dbops_restore', password });
    const show: number[] = [];
    for (let i = 0; i < SWEEPS; i++) {
      const t = process.hrtime.bigint();
      await probe.query('SHOW FULL PROCESSLIST');
      show.push(Number(process.hrtime.bigint() - t) / 1e9);
    }
    await probe.end();

    const peer = await ptKill(ctx, 20);
    say(`pt-kill: ${peer.sweeps} sweeps`);

    // Whole workflow runs (Temporal's share included), nothing to kill.
    const runs: number[] = [];
    await ctx.withWorker(config, async () => {
      for (let i = 0; i < 6; i++) {
        const t = process.hrtime.bigint();
        await (await startQueryKiller(ctx.temporal.client, config, { cluster: 'bench', requestedBy: 'bench' }, new Date(Date.now() + i * 1000))).result();
        runs.push(Number(process.hrtime.bigint() - t) / 1e9);
      }
    });

    const peerServer = peer.serverCpu / Math.max(1, peer.sweeps);
    const peerClient = peer.clientCpu / Math.max(1, peer.sweeps);
    return [
      `| ${name} | ${sessions} | server CPU per sweep | pt-kill ${ms(peerServer)} | dbops ${ms(oursServer)} | **${(oursServer / peerServer).toFixed(2)}** |`,
      `| ${name} | ${sessions} | client CPU per sweep | pt-kill ${ms(peerClient)} (Perl start-up spread over ${peer.sweeps} sweeps) | dbops ${ms(oursClient)} | **${(oursClient / peerClient).toFixed(2)}** |`,
      `| ${name} | ${sessions} | sweep latency (median of ${SWEEPS}) | SHOW FULL PROCESSLIST round trip ${ms(median(show))} | dbops findSlowQueries ${ms(median(latencies))} (connect + read + choose) | **${(median(latencies) / median(show)).toFixed(2)}** |`,
      `| ${name} | ${sessions} | one workflow run (median of ${runs.length}) | — | ${ms(median(runs))} | — |`,
    ];
  } finally {
    for (const c of [...idle, ...sleepers]) c.destroy();
    await ctx.close();
  }
}

export async function runQueryKillerBenchmark(products: Product[]): Promise<void> {
  const rows: string[] = [];
  for (const product of products) rows.push(...(await benchmarkProduct(product)));
  process.stdout.write(
    [
      `Machine: ${machine(products)}`,
      `Command: npm run bench -- query-killer   (${new Date().toISOString().slice(0, 10)})`,
      '',
      '| product | sessions | what | peer | dbops | dbops / peer |',
      '|---|---:|---|---|---|---:|',
      ...rows,
    ].join('\n') + '\n',
  );
}
