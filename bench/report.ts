/** The Markdown the benchmarks print, for bench/RESULTS.md. */
import { loadavg } from 'node:os';

export interface Row {
  /** The server product, when a suite compares more than one (its own column). */
  product?: string;
  what: string;
  peer: string;
  runs: Array<{ peer: number; ours: number }>;
  note: string;
}

export function printTable(suite: string, machine: string, rows: Row[]): void {
  const best = (xs: number[]) => Math.min(...xs);
  const byProduct = rows.some((r) => r.product !== undefined);
  const label = (r: Row) => `${byProduct ? `${r.product ?? ''} ` : ''}${r.what.split(',')[0]}`;
  const out = [
    `Machine: ${machine}`,
    `Command: npm run bench -- ${suite}   (${new Date().toISOString().slice(0, 10)})`,
    '',
    `|${byProduct ? ' product |' : ''} what | peer | peer s | dbops s | dbops / peer | notes |`,
    `|${byProduct ? '---|' : ''}---|---|---:|---:|---:|---|`,
    ...rows.map((r) => {
      const p = best(r.runs.map((x) => x.peer));
      const o = best(r.runs.map((x) => x.ours));
      return `|${byProduct ? ` ${r.product ?? ''} |` : ''} ${r.what} | \`${r.peer.replace(/\|/g, '\\|')}\` | ${p.toFixed(1)} | ${o.toFixed(1)} | **${(o / p).toFixed(2)}** | ${r.note} |`;
    }),
    '',
    'All runs, peer/dbops seconds: ' + rows.map((r) => `${label(r)}: ${r.runs.map((x) => `${x.peer.toFixed(1)}/${x.ours.toFixed(1)}`).join(', ')}`).join('; '),
    // Best peer against best dbops can pair rounds run under different load (2026-12-02: a
    // quiet peer round against a contended dbops round gave 3.34x where the rounds said 1.78x
    // and a retried attempt). The per-round ratios and the load say whether a figure moved.
    'Per-round dbops/peer: ' + rows.map((r) => `${label(r)}: ${r.runs.map((x) => (x.ours / x.peer).toFixed(2)).join(', ')}`).join('; '),
    `Load average at the end (1/5/15 min): ${loadavg().map((x) => x.toFixed(2)).join(' / ')}; on 2 cores anything above ~0.3 before the run means the figures are contended.`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}
