/**
 * Benchmarks against the standard tools, in the same run, on the same data and server:
 *   npm run bench -- backup    full backup vs the product's dump tool | zstd; incremental vs its binlog tool --raw
 *   npm run bench -- restore   loading a full vs zstd -dc | mariadb; binlog replay vs mysqlbinlog | mariadb
 *   npm run bench -- archive   moving history rows vs pt-archiver --bulk-insert --bulk-delete
 *   npm run bench -- offsite   full backup to S3, encrypted, vs to a local folder and vs dump | zstd | upload
 *   npm run bench -- binlog-archive   the continuous binlog archive under a write load vs mysqlbinlog --raw --stop-never
 *   npm run bench -- parallel   chunked full backup and parallel load vs mydumper / myloader and the single stream; resume
 *   npm run bench -- physical   physical full (mariadb-backup / clone) vs the tool by hand; restore to a running server vs the logical loads
 *   npm run bench -- query-killer   one slow-query killer run on a server with 1,000 connections vs pt-kill's sweep
 *   npm run bench -- schema-change   an index added under a write load: dbops vs the ALTER by hand and pt-online-schema-change
 * `--product mariadb|mysql|both` picks the servers (default both; MySQL only where this host
 * can run it, see scripts/setup.sh). backup and offsite compare both products; restore and
 * archive run on MariaDB only.
 * `--smoke[=ROWS]` (offsite only) runs the suite on a small dataset to prove it works end to
 * end; its figures measure nothing and are not for bench/RESULTS.md.
 * Not part of npm test. Prints a Markdown table to paste into bench/RESULTS.md.
 */
import type { Product } from '../src/domain/manifest';
import { mysqlUnavailableReason } from '../src/mysql/servers/mysql';
import { runBackupBenchmark } from './backup';
import { runRestoreBenchmark } from './restore';
import { runArchiveBenchmark } from './archive';
import { runOffsiteBenchmark } from './offsite';
import { runBinlogArchiveBenchmark } from './binlogArchive';
import { runParallelBenchmark } from './parallel';
import { runPhysicalBenchmark } from './physical';
import { runQueryKillerBenchmark } from './queryKiller';
import { runSchemaChangeBenchmark } from './schemaChange';
import { SMOKE_ROWS, type SuiteOptions } from './common';

type Suite = (products: Product[], options: SuiteOptions) => Promise<void>;

/** The suites that can run as a smoke test (on a small dataset of their own). */
const SMOKE_SUITES = new Set(['offsite']);

const mariadbOnly =
  (name: string, run: () => Promise<void>): Suite =>
  async (products) => {
    if (!products.includes('mariadb')) throw new Error(`the ${name} benchmark runs on MariaDB only`);
    await run();
  };

const suites: Record<string, Suite> = {
  backup: runBackupBenchmark,
  restore: mariadbOnly('restore', runRestoreBenchmark),
  archive: mariadbOnly('archive', runArchiveBenchmark),
  offsite: runOffsiteBenchmark,
  'binlog-archive': runBinlogArchiveBenchmark,
  parallel: runParallelBenchmark,
  physical: runPhysicalBenchmark,
  'query-killer': runQueryKillerBenchmark,
  'schema-change': runSchemaChangeBenchmark,
};

const PRODUCT_CHOICES = ['mariadb', 'mysql', 'both'] as const;
type ProductChoice = (typeof PRODUCT_CHOICES)[number];

function isProductChoice(value: string | undefined): value is ProductChoice {
  return (PRODUCT_CHOICES as readonly string[]).includes(value ?? '');
}

/** The suite names, the --product choice (--product X or --product=X) and --smoke[=ROWS]. */
function parse(argv: string[]): { names: string[]; choice: ProductChoice; options: SuiteOptions } | null {
  const names: string[] = [];
  let choice: ProductChoice = 'both';
  const options: SuiteOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--product' || arg.startsWith('--product=')) {
      const value = arg === '--product' ? argv[++i] : arg.slice('--product='.length);
      if (!isProductChoice(value)) return null;
      choice = value;
    } else if (arg === '--smoke' || arg.startsWith('--smoke=')) {
      const rows = arg === '--smoke' ? SMOKE_ROWS : Number(arg.slice('--smoke='.length));
      if (!Number.isSafeInteger(rows) || rows < 1) return null;
      options.smokeRows = rows;
    } else if (suites[arg]) {
      names.push(arg);
    } else {
      return null;
    }
  }
  if (options.smokeRows !== undefined && names.some((n) => !SMOKE_SUITES.has(n))) return null;
  return names.length > 0 ? { names, choice, options } : null;
}

/** The products to run: both by default, MariaDB alone (said loudly) where MySQL cannot run. */
function productsFor(choice: ProductChoice): Product[] {
  if (choice !== 'both') return [choice];
  const reason = mysqlUnavailableReason();
  if (reason === null) return ['mariadb', 'mysql'];
  process.stderr.write(`[bench] MySQL skipped: ${reason}\n`);
  return ['mariadb'];
}

async function main(): Promise<void> {
  const parsed = parse(process.argv.slice(2));
  if (!parsed) {
    process.stderr.write(`usage: npm run bench -- ${Object.keys(suites).join('|')} [--product ${PRODUCT_CHOICES.join('|')}] [--smoke[=ROWS]  (${[...SMOKE_SUITES].join(', ')} only)]\n`);
    process.exitCode = 2;
    return;
  }
  const products = productsFor(parsed.choice);
  for (const name of parsed.names) await suites[name]!(products, parsed.options);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
