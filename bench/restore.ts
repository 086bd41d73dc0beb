/**
 * npm run bench -- restore
 *
 * On the reference dataset, same server, same backups:
 *   1. loading the full: the point-in-time restore WORKFLOW stopped at the full's snapshot
 *      (plan, create the target, stream out of the repository through the database filter
 *      into one client session, verify with COUNT and CHECKSUM TABLE) against
 *      `zstd -dc dump | sed (rename) | mariadb`, the by-hand way;
 *   2. binlog replay: the workflow's replay phase against
 *      `mariadb-binlog --database --rewrite-db … files | mariadb` over the same files.
 */
import { localRepositoryRoot } from '../src/repository';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { startPitr } from '../src/client/restores';
import { formatBytes } from '../src/domain/naming';
import { totalRawBytes, type Manifest } from '../src/domain/manifest';
import { backupVia } from './backup';
import { benchContext, machine, sh, timed, writeBinlog } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export async function runRestoreBenchmark(): Promise<void> {
  const ctx = await benchContext(log);
  const rows: Row[] = [];
  try {
    const config = ctx.configFor('repo');
    const full = (await backupVia(ctx, config, 'full')).value;
    const files = await writeBinlog(ctx.conn, full.snapshot!.file, 0.5 * 2 ** 30, log);
    const inc: Manifest = (await backupVia(ctx, config, 'incremental')).value;
    const fullFile = path.join(localRepositoryRoot(config.repository), 'bench', 'full', full.startedAt.slice(0, 10), full.id, full.artifacts[0]!.name);
    const restore = async (into: string, to: string) =>
      ctx.withWorker(config, () =>
        timed(async () => {
          const handle = await startPitr(ctx.temporal.client, config, { cluster: 'bench', database: 'bench', into, target: JSON.parse(to) });
          return (await handle.result()) as { durationMs: { load: number; replay: number }; verification: Array<{ rows: number }> };
        }),
      );
    const drop = (db: string) => ctx.conn.query(`DROP DATABASE IF EXISTS \`${db}\``);

    const loadRuns: Array<{ peer: number; ours: number }> = [];
    const replayRuns: Array<{ peer: number; ours: number }> = [];
    const binlogDir = path.join(ctx.work, 'binlogs');
    mkdirSync(binlogDir);
    await sh(
      inc.binlogs!.files.map((f, i) => `zstd -q -dc ${path.join(localRepositoryRoot(config.repository), 'bench', 'incremental', inc.startedAt.slice(0, 10), inc.id, inc.artifacts[i]!.name)} > ${binlogDir}/${f}`).join(' && '),
    );
    for (let i = 0; i < 2; i++) {
      log(`restore, round ${i + 1}: peer load`);
      const peerDb = `bench_peer${i}`;
      await ctx.conn.query(`CREATE DATABASE ${peerDb}`);
      const pLoad = await timed(() =>
        sh(`zstd -dc ${fullFile} | sed -e '/^CREATE DATABASE /d' -e 's/^USE \`bench\`;/USE \`${peerDb}\`;/' | mariadb --defaults-extra-file=${ctx.cnf} --binary-mode`),
      );
      log(`restore, round ${i + 1}: peer replay`);
      const pReplay = await timed(() =>
        sh(
          `mariadb-binlog --no-defaults --database=bench --rewrite-db='bench->${peerDb}' --start-position=${full.snapshot!.position} ` +
            `${inc.binlogs!.files.map((f) => `${binlogDir}/${f}`).join(' ')} | mariadb --defaults-extra-file=${ctx.cnf} --binary-mode`,
          { TZ: 'UTC' },
        ),
      );
      await drop(peerDb);
      log(`restore, round ${i + 1}: dbops (load + replay + verify)`);
      const oursDb = `bench_dbops${i}`;
      const o = await restore(oursDb, JSON.stringify({ kind: 'latest' }));
      await drop(oursDb);
      loadRuns.push({ peer: pLoad.seconds, ours: o.value.durationMs.load / 1000 });
      replayRuns.push({ peer: pReplay.seconds, ours: o.value.durationMs.replay / 1000 });
      log(`  load peer ${pLoad.seconds.toFixed(1)} s / dbops ${(o.value.durationMs.load / 1000).toFixed(1)} s; replay peer ${pReplay.seconds.toFixed(1)} s / dbops ${(o.value.durationMs.replay / 1000).toFixed(1)} s; whole workflow ${o.seconds.toFixed(1)} s`);
    }
    rows.push({
      what: `load the full, ${full.tables.reduce((n, t) => n + t.rows, 0).toLocaleString()} rows, ${formatBytes(totalRawBytes(full))} SQL`,
      peer: 'zstd -dc dump | sed (rename) | mariadb',
      runs: loadRuns,
      note: 'dbops: decompress, select + rename the database, one client session (the workflow’s load phase)',
    });
    rows.push({
      what: `binlog replay, ${inc.binlogs!.files.length} files, ${formatBytes(totalRawBytes(inc))}`,
      peer: 'mariadb-binlog --database --rewrite-db … | mariadb',
      runs: replayRuns,
      note: `dbops: unpack from the repository, one mysqlbinlog into one session, tracking the position reached (${files.length} files written)`,
    });
    printTable('restore', machine(), rows);
  } finally {
    await ctx.close();
  }
}
