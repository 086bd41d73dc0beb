/**
 * Reading the backed-up binlogs without writing anything: unpacking them for mysqlbinlog,
 * the arguments a replay decodes them with, the scan of a replay window (what it would
 * rewrite, skip or refuse), and finding "the bad statement" a restore stops before.
 */
import { SealError } from '../repository/crypto';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import type { Product } from '../domain/manifest';
import { ReplayStream, type ScanReport } from '../domain/restore/replayStream';
import { StatementFinder, type StatementHit } from '../domain/restore/statementFinder';

export type { StatementHit } from '../domain/restore/statementFinder';
import type { RestorePlan } from '../domain/restorePlan';
import { compilePattern } from '../domain/restoreTarget';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';
import { compressionOf, decompressor } from '../tools/compression';
import { childEnv, findTool } from '../tools/tools';
import { withConnection } from './connection';
import { restoreAccount } from './restoreAccount';

/** The mysqlbinlog arguments of a replay of `plan` into `into` (also what the window scan reads). */
export function replayArguments(product: Product, plan: RestorePlan, into: string | null, excludeGtids: string | null = null): string[] {
  // MariaDB filters --database on the name before --rewrite-db, MySQL on the name after it.
  const args = ['--no-defaults'];
  if (into !== null) {
    args.push(`--database=${product === 'mariadb' || into === plan.database ? plan.database : into}`);
    if (into !== plan.database) args.push(`--rewrite-db=${plan.database}->${into}`);
  }
  // The source's GTIDs are decoded (the replay reports the last one it applied) but never
  // sent: the replay stream drops GTID_NEXT, so the copy's transactions get new GTIDs.
  const stop = plan.stop;
  if (stop.kind === 'gtid' && product === 'mysql') {
    // A GTID set: exactly the transactions after the snapshot that are in it.
    args.push(`--start-position=${plan.start.position}`, `--include-gtids=${stop.gtid}`);
  } else if (stop.kind === 'gtid') {
    args.push(`--start-position=${plan.start.gtidSet ?? ''}`, `--stop-position=${stop.gtid}`);
  } else {
    args.push(`--start-position=${plan.start.position}`);
    if (stop.kind === 'datetime') args.push(`--stop-datetime=${stop.value}`);
    if (stop.kind === 'position') args.push(`--stop-position=${stop.position}`);
  }
  // A server started from a MySQL clone holds some transactions after the start already.
  if (excludeGtids) args.push(`--exclude-gtids=${excludeGtids}`);
  return args;
}

export function binlogToolOf(cluster: ClusterConfig, product: Product): string {
  return cluster.tools.binlog ?? (product === 'mariadb' ? 'mariadb-binlog' : 'mysqlbinlog');
}

/** Every database on the server (to tell db.table from alias.column in statements). */
export async function serverSchemas(cluster: ClusterConfig): Promise<Set<string>> {
  return withConnection(restoreAccount(cluster), async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA');
    return new Set(rows.map((r) => String(r.name)));
  });
}

/**
 * Reads the replay window before anything is written: the statements it would send, as the
 * replay will (filtered and renamed), and the whole window (every database) for statements
 * on the source that the filter would drop. Returns what would be rewritten, skipped and
 * refused, each with its binlog position.
 */
export async function scanReplayWindow(req: { cluster: ClusterConfig; product: Product; storage: Storage; plan: RestorePlan; into: string; onProgress?: () => void }): Promise<ScanReport> {
  const schemas = await serverSchemas(req.cluster);
  const context = { source: req.plan.database, target: req.into, schemas };
  const firstFile = req.plan.binlogs[0]?.file ?? req.plan.start.file;
  const filtered = new ReplayStream({ mode: 'scan', context, firstFile });
  const whole = new ReplayStream({ mode: 'crossScan', context, firstFile });
  if (req.plan.binlogs.length === 0) return filtered.report;
  const work = await mkdtemp(path.join(tmpdir(), `dbops-scan-${process.pid}-`));
  try {
    const files = await unpackBinlogs(req.plan, req.storage, work, () => req.onProgress?.());
    const tool = await findTool(binlogToolOf(req.cluster, req.product));
    const read = async (args: string[], stream: ReplayStream) => {
      const decoder = spawn(tool, [...args, ...files], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv({ TZ: 'UTC' }) });
      let stderr = '';
      decoder.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve) => decoder.on('close', resolve));
      let bytes = 0;
      for await (const chunk of decoder.stdout as AsyncIterable<Buffer>) {
        stream.push(chunk.toString('utf8'));
        bytes += chunk.length;
        if (bytes > 64 << 20) {
          bytes = 0;
          req.onProgress?.();
        }
      }
      stream.finish();
      const code = await closed;
      if (code !== 0) throw new Error(`mysqlbinlog could not read the window (exit ${code}): ${stderr.trim().split('\n').slice(-2).join(' ')}`);
    };
    await read(replayArguments(req.product, req.plan, req.into), filtered);
    await read(replayArguments(req.product, req.plan, null), whole);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const report = filtered.report;
  report.refused.push(...whole.report.refused);
  report.refused.sort((a, b) => a.file.localeCompare(b.file) || a.position - b.position);
  // A server with binary logging lets only SUPER create triggers and stored routines; a restore's account has no SUPER.
  const routines = report.objectsCreated.filter((o) => o.type === 'TRIGGER' || o.type === 'PROCEDURE' || o.type === 'FUNCTION');
  if (routines.length > 0) {
    const trusted = await withConnection(restoreAccount(req.cluster), async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@log_bin AS logBin, @@log_bin_trust_function_creators AS trust');
      return Number(rows[0]?.logBin) === 0 || Number(rows[0]?.trust) === 1;
    });
    if (!trusted) {
      for (const o of routines) {
        report.refused.push({
          file: o.file,
          position: o.position,
          statement: `CREATE ${o.type} ${o.name}`,
          reason: `the window creates ${o.type.toLowerCase()} ${o.name}; with binary logging on, the server lets only SUPER create triggers and stored routines, and a restore's account has no SUPER`,
          fix: 'restore to a point before it, or set log_bin_trust_function_creators=1 on the server for the restore',
        });
      }
    }
  }
  return report;
}

/** Decompresses the plan's binlogs into a private folder (mysqlbinlog reads files). */
/** Decompresses one stored object into `out` (appending when asked); the raw sha256 and size of what it wrote. */
async function unpackObject(storage: Storage, key: string, out: string, append: boolean, label: string): Promise<{ sha256: string; size: number }> {
  // Opened before the codec starts: a missing object must not leave a decompressor waiting on its input.
  const source = await storage.openRead(key);
  const codec = await decompressor(compressionOf(key));
  const hash = createHash('sha256');
  let size = 0;
  const results = await Promise.allSettled([
    codec.done,
    pipeline(source, codec.input),
    pipeline(
      codec.output,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      }),
      createWriteStream(out, { mode: 0o600, flags: append ? 'a' : 'w' }),
    ),
  ]);
  // A stored object that fails authentication is the cause; otherwise the codec's own
  // complaint (corrupt data) says more than the EPIPE it causes upstream.
  const sealed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof SealError);
  if (sealed) throw sealed.reason;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw new Error(`${label}: ${(failed.reason as Error)?.message ?? String(failed.reason)}`);
  return { sha256: hash.digest('hex'), size };
}

/**
 * Writes the plan's binlog files into `work`, in order: each backed-up file decompressed,
 * each archived file put back together from its segments, every segment checked against
 * the size and sha256 its record gives.
 */
export async function unpackBinlogs(plan: RestorePlan, storage: Storage, work: string, onFile: (file: string) => void): Promise<string[]> {
  const files: string[] = [];
  for (const b of plan.binlogs) {
    const out = path.join(work, b.file);
    if ('segments' in b) {
      const dir = layout.archiveFileDir(plan.cluster, b.timeline, b.file);
      let at = 0;
      for (const seg of b.segments) {
        const label = `binlog archive ${b.timeline}/${b.file} [${seg.start}, ${seg.end})`;
        if (seg.start !== at) throw new Error(`${label}: the archive has a hole before it (the file so far ends at ${at})`);
        const got = await unpackObject(storage, layout.artifact(dir, seg.artifact), out, at > 0, label);
        if (got.size !== seg.end - seg.start || got.sha256 !== seg.rawSha256) {
          throw new Error(`${label}: ${got.size} bytes with sha256 ${got.sha256.slice(0, 12)}…, the record says ${seg.end - seg.start} bytes, ${seg.rawSha256.slice(0, 12)}…: the segment is damaged`);
        }
        at = seg.end;
      }
    } else {
      await unpackObject(storage, layout.artifact(b.path, b.artifact), out, false, `${b.backupId}/${b.artifact}`);
    }
    files.push(out);
    onFile(b.file);
  }
  return files;
}

/**
 * "Just before the bad statement": decodes the plan's binlogs (rows as comments, the
 * original statements where the binlog holds them; MySQL's need -vv; TZ=UTC) and returns
 * the start of the first transaction whose statement matches, at or after `after`.
 */
export async function findStatement(
  cluster: ClusterConfig,
  product: Product,
  storage: Storage,
  plan: RestorePlan,
  pattern: string,
  after: string | null,
  onProgress: () => void = () => undefined,
): Promise<StatementHit | null> {
  if (plan.binlogs.length === 0) return null;
  const re = compilePattern(pattern);
  const matches = (text: string) => re.matcher(text).find();
  const work = await mkdtemp(path.join(tmpdir(), 'dbops-find-'));
  try {
    const files = await unpackBinlogs(plan, storage, work, () => undefined);
    const tool = await findTool(binlogToolOf(cluster, product));
    const decoder = spawn(
      tool,
      ['--no-defaults', '--base64-output=DECODE-ROWS', '--verbose', ...(product === 'mysql' ? ['--verbose'] : []), `--database=${plan.database}`, `--start-position=${plan.start.position}`, ...files],
      { stdio: ['ignore', 'pipe', 'ignore'], env: childEnv({ TZ: 'UTC' }) },
    );
    const finder = new StatementFinder({ firstFile: plan.binlogs[0]!.file, startPosition: plan.start.position, matches, after });
    let tail = '';
    let bytes = 0;
    for await (const chunk of decoder.stdout as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes >= 16 << 20) {
        bytes = 0;
        onProgress();
      }
      const lines = (tail + chunk.toString('utf8')).split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) {
        const hit = finder.line(line);
        if (hit) {
          decoder.kill();
          return hit;
        }
      }
    }
    return null;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
