/**
 * npm run bench -- archive
 *
 * Moves the old half of a 1,000,000-row copy of the reference orders (created_at before
 * 2025: scattered over the primary key, as order dates are after imports and backfills)
 * into a history table on the same server, twice over:
 *   peer:  pt-archiver --bulk-insert --bulk-delete --limit 5000 --commit-each
 *   dbops: the archive workflow, batches of 5000 (approval pre-given), including its plan,
 *          its load check before every batch and its checksum verification at the end.
 * Both end states are compared row for row (history and what is left).
 */
import { execFileSync } from 'node:child_process';
import type { RowDataPacket } from 'mysql2/promise';
import { archiveInput, resolveArchiveJob, startArchive } from '../src/client/archives';
import { checksumSelect } from '../src/domain/archive';
import type { ArchiveResult } from '../src/workflows/archive';
import { benchContext, machine, timed } from './common';
import { printTable, type Row } from './report';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const ROWS = 1_000_000;
const CUTOFF = "created_at < '2025-01-01'";
const COLUMNS = ['id', 'customer_id', 'status', 'total', 'currency', 'sku', 'quantity', 'note', 'created_at', 'updated_at'];

export async function runArchiveBenchmark(): Promise<void> {
  const ctx = await benchContext(log);
  const rows: Row[] = [];
  try {
    const config = ctx.configFor('archive');
    const sum = async (table: string): Promise<string> => {
      const [[r]] = (await ctx.conn.query(`SELECT ${checksumSelect(COLUMNS)} FROM bench.${table}`)) as unknown as [[RowDataPacket]];
      return `${String(r?.n)}/${String(r?.s)}/${String(r?.x)}`;
    };
    const fresh = async (table: string) => {
      await ctx.conn.query(`DROP TABLE IF EXISTS bench.${table}, bench.${table}_history`);
      await ctx.conn.query(`CREATE TABLE bench.${table} LIKE bench.orders`);
      await ctx.conn.query(`INSERT INTO bench.${table} SELECT * FROM bench.orders WHERE id <= ${ROWS}`);
      await ctx.conn.query(`CREATE TABLE bench.${table}_history LIKE bench.orders`);
    };
    const [[{ n: moving }]] = (await ctx.conn.query(`SELECT COUNT(*) AS n FROM bench.orders WHERE id <= ${ROWS} AND ${CUTOFF}`)) as unknown as [[{ n: number }]];
    const runs: Array<{ peer: number; ours: number }> = [];
    for (let round = 1; round <= 2; round++) {
      log(`archive, round ${round}: copying ${ROWS.toLocaleString()} rows twice`);
      await fresh('arch_peer');
      await fresh('arch_dbops');

      log(`archive, round ${round}: pt-archiver`);
      const peer = await timed(async () => {
        // Credentials from the 0600 defaults file (F=), never on the command line.
        execFileSync(
          'pt-archiver',
          [
            '--source', `F=${ctx.cnf},D=bench,t=arch_peer,A=utf8mb4,L=1`,
            '--dest', `F=${ctx.cnf},D=bench,t=arch_peer_history,A=utf8mb4,L=1`,
            '--where', CUTOFF,
            '--bulk-insert', '--bulk-delete', '--limit', '5000', '--commit-each',
          ],
          { stdio: ['ignore', 'inherit', 'inherit'] },
        );
      });

      log(`archive, round ${round}: dbops`);
      const ours = await ctx.withWorker(config, () =>
        timed(async () => {
          const job = resolveArchiveJob(config, { fields: { cluster: 'bench', database: 'bench', table: 'arch_dbops', where: CUTOFF, to: 'arch_dbops_history', batchSize: 5000 } });
          const handle = await startArchive(ctx.temporal.client, config, { ...archiveInput(config, job, { yes: { by: 'bench', reason: 'benchmark' }, requestedBy: 'bench' }), job });
          return (await handle.result()) as ArchiveResult;
        }),
      );
      if (!ours.value.verification?.ok) throw new Error(`dbops archive did not verify: ${ours.value.verification?.problems.join('; ')}`);
      const same = (await sum('arch_peer')) === (await sum('arch_dbops')) && (await sum('arch_peer_history')) === (await sum('arch_dbops_history'));
      if (!same) throw new Error('pt-archiver and dbops left different tables behind');
      log(`  ${Number(moving).toLocaleString()} rows: pt-archiver ${peer.seconds.toFixed(1)} s (${Math.round(Number(moving) / peer.seconds)} rows/s), dbops ${ours.seconds.toFixed(1)} s (${Math.round(Number(moving) / ours.seconds)} rows/s); identical end states`);
      runs.push({ peer: peer.seconds, ours: ours.seconds });
    }
    const best = (xs: number[]) => Math.min(...xs);
    const peerRate = Number(moving) / best(runs.map((r) => r.peer));
    const ourRate = Number(moving) / best(runs.map((r) => r.ours));
    rows.push({
      what: `archive ${Number(moving).toLocaleString()} of ${ROWS.toLocaleString()} rows (${CUTOFF}), same server`,
      peer: 'pt-archiver --bulk-insert --bulk-delete --limit 5000 --commit-each',
      runs,
      note: `${Math.round(ourRate).toLocaleString()} rows/s against ${Math.round(peerRate).toLocaleString()} rows/s: **${(ourRate / peerRate).toFixed(1)}×**; dbops time includes its plan, load checks and checksum verification; both end states identical`,
    });
    await ctx.conn.query('DROP TABLE IF EXISTS bench.arch_peer, bench.arch_peer_history, bench.arch_dbops, bench.arch_dbops_history');
    printTable('archive', machine(), rows);
  } finally {
    await ctx.close();
  }
}
