/**
 * Physical full backups: the server's own files, copied while it runs, as ONE compressed,
 * hashed, test-decompressed artifact in the repository.
 *
 * - MariaDB: `mariadb-backup --backup --stream=xbstream`, its stdout read by the worker
 *   (sha256 of the raw stream, the rate limit) and handed to zstd. The binlog position is
 *   the one mariadb-backup read under BACKUP STAGE BLOCK_COMMIT (xtrabackup_info, written
 *   to a private folder with --extra-lsndir). The worker must run on the database host:
 *   mariadb-backup reads the datadir's files.
 * - MySQL: `CLONE LOCAL DATA DIRECTORY` into a private folder on the same host (the clone
 *   plugin, BACKUP_ADMIN), then that folder as a tar through the same compressor, then the
 *   folder is removed. The folder costs the datadir's size on disk while the backup runs.
 *   A local clone reports no binlog position, so the manifest's is the one just before the
 *   clone, and the restore skips what the copy already holds by its GTIDs (gtid_mode=ON).
 *
 * Either way the copy holds every database of the instance; rows are not counted (the
 * files are not read as rows), so the manifest lists no tables.
 */
import { spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import type { DumpFacts } from '../domain/dumpScanner';
import { Failure } from '../domain/failures';
import type { Artifact, Compression, Product } from '../domain/manifest';
import { parseMariabackupInfo, physicalArtifactName, type PhysicalLayout, type PhysicalPosition } from '../domain/physical';
import type { Storage } from '../repository/storage';
import { EXTENSIONS } from '../tools/compression';
import { prepareCompressedWrite } from '../repository/compressedWrite';
import { childEnv, findTool } from '../tools/tools';
import { currentBinlogPosition, withConnection } from './connection';
import { toolVersion, withDefaultsFile, type DumpProgress } from './dump';
import { classifyToolStderr } from './errors';

export interface PhysicalBackupRequest {
  cluster: ClusterConfig;
  product: Product;
  /** The databases dbops restores and drills from this backup (the copy holds them all). */
  databases: string[];
  compression: Compression;
  compressionLevel?: number;
  /** Raw MiB per second the copy may read (default: no limit). */
  maxBytesPerSecond: number | null;
  /** mariadb-backup --parallel: files copied at once. */
  threads: number;
  /** MariaDB: copy only the pages changed after this LSN (a physical incremental). */
  incrementalLsn?: number;
  storage: Storage;
  stagingKey: string;
  /** Where the tools may write their private scratch (lsn folder, MySQL's clone). */
  scratchDir: string;
  onProgress?: (p: DumpProgress) => void;
  signal?: AbortSignal;
}

export interface PhysicalBackupResult {
  artifact: Artifact;
  facts: DumpFacts;
  layout: PhysicalLayout;
  tool: { name: string; version: string };
  durationMs: number;
}

/** A tool's exit: its code (or signal) and the tail of what it said. */
function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | string; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-64 * 1024);
  });
  return new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: e.message, stderr }));
    child.on('close', (code, signal) => resolve({ code: code ?? signal ?? -1, stderr }));
  });
}

function toolFailed(what: string, r: { code: number | string; stderr: string }, cluster: string): Error {
  const classified = classifyToolStderr(r.stderr, cluster);
  if (classified) return classified;
  const lines = r.stderr.trim().split('\n').filter((l) => !/\[Note\]|\[Warning\]/.test(l));
  return new Error(`${what} failed (exit ${r.code}): ${lines.slice(-4).join(' ')}`);
}

/** Views of the databases (the manifest keeps their names; the copy holds them anyway). */
async function viewsOf(cluster: ClusterConfig, databases: string[]): Promise<string[]> {
  return withConnection(cluster, async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT TABLE_SCHEMA AS d, TABLE_NAME AS t FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN (?) ORDER BY 1, 2', [databases]);
    return rows.map((r) => `${String(r.d)}.${String(r.t)}`);
  });
}

function factsAt(position: PhysicalPosition, databases: string[], views: string[]): DumpFacts {
  return {
    binlogFile: position.file,
    binlogPosition: position.position,
    gtidSet: position.gtidSet,
    databases,
    tables: [],
    views,
    mariadbSandboxHeader: false,
    completed: true,
  };
}

async function mariadbBackup(req: PhysicalBackupRequest, progress: DumpProgress): Promise<Omit<PhysicalBackupResult, 'durationMs'>> {
  const toolName = req.cluster.tools.physical ?? 'mariadb-backup';
  const tool = await findTool(toolName);
  const version = await toolVersion(tool);
  const name = physicalArtifactName('xbstream', EXTENSIONS[req.compression]);
  // The tool's own folders: its target (nothing is written there when streaming) and the lsn copy we read back.
  const work = mkdtempSync(path.join(req.scratchDir, 'dbops-physical-'));
  try {
    const lsnDir = path.join(work, 'lsn');
    await mkdir(path.join(work, 'target'), { mode: 0o700 });
    const serverVersion = await withConnection(req.cluster, async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@version AS v');
      return String(rows[0]?.v ?? '');
    });
    const { artifact } = await withDefaultsFile(req.cluster, async (defaultsFile) => {
      // --defaults-extra-file must come first; credentials are read from its [client] group.
      const args = [
        `--defaults-extra-file=${defaultsFile}`,
        '--backup',
        '--stream=xbstream',
        `--target-dir=${path.join(work, 'target')}`,
        `--extra-lsndir=${lsnDir}`,
        `--parallel=${req.threads}`,
        ...(req.incrementalLsn !== undefined ? [`--incremental-lsn=${req.incrementalLsn}`] : []),
      ];
      const writer = await prepareCompressedWrite({ ...req, testFrames: true }, name, progress);
      const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
      const store = writer.start(child.stdout);
      const exit = exitOf(child);
      const abort = () => {
        child.kill('SIGKILL');
        store.kill();
      };
      req.signal?.addEventListener('abort', abort, { once: true });
      try {
        const [r, stored] = await Promise.all([exit, store.done.then(() => null, (e: unknown) => e)]);
        if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'physical backup cancelled', type: 'Cancelled' });
        if (r.code !== 0 || !/completed OK!/.test(r.stderr)) throw toolFailed(toolName, r, req.cluster.name);
        if (stored) throw stored instanceof Error ? stored : new Error(String(stored));
        return { artifact: store.artifact };
      } finally {
        req.signal?.removeEventListener('abort', abort);
        store.kill();
      }
    });
    const info = parseMariabackupInfo(readFileSync(path.join(lsnDir, 'xtrabackup_info'), 'utf8'));
    if (!info.position) {
      throw ApplicationFailure.nonRetryable(`cluster ${req.cluster.name}: mariadb-backup recorded no binlog position (is log_bin on?); a physical full needs one for point-in-time restores`, Failure.DumpPositionMissing);
    }
    return {
      artifact,
      facts: factsAt(info.position, req.databases, await viewsOf(req.cluster, req.databases)),
      layout: { format: 'xbstream', artifact: name, fromLsn: info.fromLsn, toLsn: info.toLsn, serverVersion, until: null },
      tool: { name: toolName, version },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * MySQL: CLONE LOCAL into a folder the server can write (made here, owned by the datadir's
 * owner), then tar | compress into the repository. The clone's folder must be on this
 * host: the worker runs where the server does.
 */
async function mysqlClone(req: PhysicalBackupRequest, progress: DumpProgress): Promise<Omit<PhysicalBackupResult, 'durationMs'>> {
  const name = physicalArtifactName('clone-tar', EXTENSIONS[req.compression]);
  const facts = await withConnection(req.cluster, async (conn) => {
    const [plugin] = await conn.query<RowDataPacket[]>("SELECT PLUGIN_STATUS AS s FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'");
    if (plugin[0]?.s !== 'ACTIVE') {
      throw ApplicationFailure.nonRetryable(
        `cluster ${req.cluster.name}: the clone plugin is not active; a physical MySQL backup uses it (as an administrator: INSTALL PLUGIN clone SONAME 'mysql_clone.so', and GRANT BACKUP_ADMIN to the backup account)`,
        Failure.Config,
      );
    }
    const [vars] = await conn.query<RowDataPacket[]>('SELECT @@datadir AS datadir, @@version AS version, @@GLOBAL.gtid_mode AS gtid');
    if (String(vars[0]?.gtid ?? '') !== 'ON') {
      throw ApplicationFailure.nonRetryable(
        `cluster ${req.cluster.name}: a physical MySQL backup needs gtid_mode=ON (a local clone records no binlog position; the restore finds where to replay from by the GTIDs the copy holds); take logical fulls (fullBackup.engine dump or parallel) or turn GTIDs on`,
        Failure.Config,
      );
    }
    return { datadir: String(vars[0]?.datadir ?? ''), version: String(vars[0]?.version ?? '') };
  });
  const work = mkdtempSync(path.join(req.scratchDir, 'dbops-clone-'));
  try {
    // The server writes the clone as its own OS user: the folder it creates it in is that user's.
    try {
      const owner = statSync(facts.datadir);
      chownSync(work, owner.uid, owner.gid);
    } catch {
      // the datadir is not visible from here (another host?): CLONE will say so
    }
    const cloneDir = path.join(work, 'clone');
    // A local clone leaves clone_status's binlog position empty. The position just BEFORE
    // the clone is where replay starts; the transactions between it and the copy's own point
    // are in the copy's gtid_executed, and the restore's replay excludes those.
    const position = await withConnection(req.cluster, async (conn) => {
      const before = await currentBinlogPosition(conn);
      const abort = () => conn.destroy();
      req.signal?.addEventListener('abort', abort, { once: true });
      try {
        await conn.query(`CLONE LOCAL DATA DIRECTORY = ${conn.escape(cloneDir)}`);
      } finally {
        req.signal?.removeEventListener('abort', abort);
      }
      const [rows] = await conn.query<RowDataPacket[]>('SELECT STATE FROM performance_schema.clone_status ORDER BY ID DESC LIMIT 1');
      if (rows[0]?.STATE !== 'Completed') throw new Error(`the clone of ${req.cluster.name} did not complete (state ${String(rows[0]?.STATE ?? 'unknown')})`);
      return { before, after: await currentBinlogPosition(conn) };
    });
    const tarTool = await findTool('tar');
    const writer = await prepareCompressedWrite({ ...req, testFrames: true }, name, progress);
    const tar = spawn(tarTool, ['--create', '--file=-', `--directory=${cloneDir}`, '--numeric-owner', '.'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    const store = writer.start(tar.stdout);
    const exit = exitOf(tar);
    const abort = () => {
      tar.kill('SIGKILL');
      store.kill();
    };
    req.signal?.addEventListener('abort', abort, { once: true });
    try {
      const [r, stored] = await Promise.all([exit, store.done.then(() => null, (e: unknown) => e)]);
      if (req.signal?.aborted) throw ApplicationFailure.create({ message: 'physical backup cancelled', type: 'Cancelled' });
      if (r.code !== 0) throw toolFailed('tar of the clone', r, req.cluster.name);
      if (stored) throw stored instanceof Error ? stored : new Error(String(stored));
    } finally {
      req.signal?.removeEventListener('abort', abort);
      store.kill();
    }
    return {
      artifact: store.artifact,
      facts: factsAt(position.before, req.databases, await viewsOf(req.cluster, req.databases)),
      layout: { format: 'clone-tar', artifact: name, fromLsn: null, toLsn: null, serverVersion: facts.version, until: position.after },
      tool: { name: 'mysql clone plugin', version: facts.version },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function runPhysicalBackup(req: PhysicalBackupRequest): Promise<PhysicalBackupResult> {
  const started = Date.now();
  const progress: DumpProgress = { phase: 'dump', rawBytes: 0, storedBytes: 0 };
  const ticker = setInterval(() => req.onProgress?.(progress), 1000);
  try {
    const r = req.product === 'mariadb' ? await mariadbBackup(req, progress) : await mysqlClone(req, progress);
    req.onProgress?.(progress);
    return { ...r, durationMs: Date.now() - started };
  } finally {
    clearInterval(ticker);
  }
}
