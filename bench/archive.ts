/**
 * npm run bench -- archive
 *
 * Moves the older half of a 1,000,000-row copy of the reference orders into a history
 * table on the same server, twice over:
 *   peer:  pt-archiver --bulk-insert --bulk-delete --limit 5000 --commit-each
 *   dbops: the archive workflow, batches of 5000 (approval pre-given), including its plan,
 *          its load check before every batch and its checksum verification at the end.
 * Both end states are compared: the same keys must have moved. Their contents are compared
 * too, and differences are counted and reported: pt-archiver 3.2's --bulk-insert writes
 * its LOAD DATA file without the table's character set and turns non-ASCII text into
 * '?' (percona-toolkit PR #538; Archery issue #692). dbops never leaves the server.
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
// created_at grows with id in the reference data: the first half of the table is older.
const CUTOFF = "created_at < '2024-03-16'";
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
    /** Wait until InnoDB has flushed what the copies dirtied (at most 60 s), so neither tool pays for the other's writes. */
    const settle = async () => {
      await ctx.conn.query('SET GLOBAL innodb_max_dirty_pages_pct = 0');
      try {
        for (let i = 0; i < 120; i++) {
          const [[r]] = (await ctx.conn.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")) as unknown as [[RowDataPacket]];
          if (Number(r?.Value) < 500) return;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      } finally {
        await ctx.conn.query('SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT');
      }
    };
    const runs: Array<{ peer: number; ours: number }> = [];
    let corrupted = 0;
    for (let round = 1; round <= 4; round++) {
      log(`archive, round ${round}: copying ${ROWS.toLocaleString()} rows twice`);
      await fresh('arch_peer');
      await fresh('arch_dbops');

      await settle();
      const runPeer = () => timed(async () => {
        // Credentials from the 0600 defaults file (F=), never on the command line.
        execFileSync(
          'pt-archiver',
          [
            '--source', `F=${ctx.cnf},D=bench,t=arch_peer,A=utf8mb4,L=1`,
            '--dest', `F=${ctx.cnf},D=bench,t=arch_peer_history,A=utf8mb4,L=1`,
            '--where', CUTOFF,
            '--bulk-insert', '--bulk-delete', '--limit', '5000', '--commit-each',
            // Its default keeps the row with the highest key (an AUTO_INCREMENT guard); both tools must move the same rows.
            '--no-safe-auto-increment',
          ],
          { stdio: ['ignore', 'inherit', 'inherit'] },
        );
      });
      const runOurs = () => ctx.withWorker(config, () =>
        timed(async () => {
          const job = resolveArchiveJob(config, { fields: { cluster: 'bench', database: 'bench', table: 'arch_dbops', where: CUTOFF, to: 'arch_dbops_history', batchSize: 5000 } });
          const handle = await startArchive(ctx.temporal.client, config, { ...archiveInput(config, job, { yes: { by: 'bench', reason: 'benchmark' }, requestedBy: 'bench' }), job });
          return (await handle.result()) as ArchiveResult;
        }),
      );
      // Alternate who goes first; let the server finish flushing the copies before each timed run.
      let peer: Awaited<ReturnType<typeof runPeer>>;
      let ours: Awaited<ReturnType<typeof runOurs>>;
      if (round % 2 === 1) {
        log(`archive, round ${round}: pt-archiver`);
        peer = await runPeer();
        await settle();
        log(`archive, round ${round}: dbops`);
        ours = await runOurs();
      } else {
        log(`archive, round ${round}: dbops`);
        ours = await runOurs();
        await settle();
        log(`archive, round ${round}: pt-archiver`);
        peer = await runPeer();
      }
      if (!ours.value.verification?.ok) throw new Error(`dbops archive did not verify: ${ours.value.verification?.problems.join('; ')}`);
      const ends = { peer: [await sum('arch_peer'), await sum('arch_peer_history')], dbops: [await sum('arch_dbops'), await sum('arch_dbops_history')] };
      const [[keys]] = (await ctx.conn.query(
        `SELECT (SELECT COUNT(*) FROM bench.arch_peer_history) AS peer, (SELECT COUNT(*) FROM bench.arch_dbops_history) AS ours,
                (SELECT COUNT(*) FROM bench.arch_peer_history p JOIN bench.arch_dbops_history d USING (id)) AS common`,
      )) as unknown as [[RowDataPacket]];
      if (Number(keys?.peer) !== Number(moving) || Number(keys?.ours) !== Number(moving) || Number(keys?.common) !== Number(moving)) {
        throw new Error(`pt-archiver and dbops moved different rows: ${JSON.stringify(keys)} of ${String(moving)}`);
      }
      const [[orig]] = (await ctx.conn.query(`SELECT ${checksumSelect(COLUMNS)} FROM bench.orders WHERE id <= ${ROWS} AND ${CUTOFF}`)) as unknown as [[RowDataPacket]];
      if (ends.dbops[1] !== `${String(orig?.n)}/${String(orig?.s)}/${String(orig?.x)}`) throw new Error('dbops history differs from the original rows');
      const [[bad]] = (await ctx.conn.query(
        `SELECT COUNT(*) AS n FROM bench.arch_peer_history p JOIN bench.orders o USING (id) WHERE NOT (p.note <=> o.note AND p.sku = o.sku AND p.status = o.status AND p.total = o.total AND p.created_at = o.created_at AND p.updated_at = o.updated_at)`,
      )) as unknown as [[RowDataPacket]];
      corrupted = Number(bad?.n);
      if (corrupted > 0) log(`  pt-archiver changed the contents of ${corrupted.toLocaleString()} archived rows (non-ASCII text became '?'); dbops: identical to the original`);
      log(`  ${Number(moving).toLocaleString()} rows: pt-archiver ${peer.seconds.toFixed(1)} s (${Math.round(Number(moving) / peer.seconds)} rows/s), dbops ${ours.seconds.toFixed(1)} s (${Math.round(Number(moving) / ours.seconds)} rows/s); same keys moved`);
      runs.push({ peer: peer.seconds, ours: ours.seconds });
    }
    const best = (xs: number[]) => Math.min(...xs);
    const peerRate = Number(moving) / best(runs.map((r) => r.peer));
    const ourRate = Number(moving) / best(runs.map((r) => r.ours));
    rows.push({
      what: `archive ${Number(moving).toLocaleString()} of ${ROWS.toLocaleString()} rows (${CUTOFF}), same server`,
      peer: 'pt-archiver --bulk-insert --bulk-delete --limit 5000 --commit-each',
      runs,
      note: `${Math.round(ourRate).toLocaleString()} rows/s against ${Math.round(peerRate).toLocaleString()} rows/s: **${(ourRate / peerRate).toFixed(1)}×**; dbops time includes its plan, load checks and checksum verification; same keys moved; dbops's history equals the original rows (checksums), pt-archiver's had ${corrupted.toLocaleString()} rows with text changed`,
    });
    await ctx.conn.query('DROP TABLE IF EXISTS bench.arch_peer, bench.arch_peer_history, bench.arch_dbops, bench.arch_dbops_history');
    printTable('archive', machine(), rows);
  } finally {
    await ctx.close();
  }
}
