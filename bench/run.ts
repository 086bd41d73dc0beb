/**
 * Benchmarks against the standard tools, in the same run, on the same data and server:
 *   npm run bench -- backup    full backup vs mysqldump | zstd; incremental vs mysqlbinlog --raw
 *   npm run bench -- restore   loading a full vs zstd -dc | mariadb; binlog replay vs mysqlbinlog | mariadb
 *   npm run bench -- archive   moving history rows vs pt-archiver --bulk-insert --bulk-delete
 * Not part of npm test. Prints a Markdown table to paste into bench/RESULTS.md.
 */
import { runBackupBenchmark } from './backup';
import { runRestoreBenchmark } from './restore';
import { runArchiveBenchmark } from './archive';

const suites: Record<string, () => Promise<void>> = { backup: runBackupBenchmark, restore: runRestoreBenchmark, archive: runArchiveBenchmark };

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  if (names.length === 0 || names.some((n) => !suites[n])) {
    process.stderr.write(`usage: npm run bench -- ${Object.keys(suites).join('|')}\n`);
    process.exitCode = 2;
    return;
  }
  for (const name of names) await suites[name]!();
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
