/** The Markdown the benchmarks print, for bench/RESULTS.md. */
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
  ];
  process.stdout.write(out.join('\n') + '\n');
}
