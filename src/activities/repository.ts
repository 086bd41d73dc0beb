/**
 * The backup repository on a local filesystem (DESIGN.md §3):
 *
 *   <root>/<cluster>/<type>/<YYYY-MM-DD>/<id>/{manifest.json, <artifact>}
 *   <root>/<cluster>/<type>/index.json          derived from the manifests, written atomically
 *   <root>/<cluster>/.staging/<id>/             work in progress, never listed
 *
 * A backup appears only by an atomic rename of its verified staging folder, so a reader
 * sees a whole backup or none. The index is a cache: the manifests are the truth.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import {
  IndexSchema,
  ManifestSchema,
  totalRawBytes,
  totalStoredBytes,
  type Artifact,
  type BackupIndex,
  type BackupType,
  type Manifest,
  type ManifestDraft,
} from '../domain/manifest';
import { BACKUP_ID_PATTERN, BACKUP_TYPES } from '../domain/manifest';
import { CLUSTER_NAME_PATTERN } from '../domain/identifiers';
import type { ChainState } from '../domain/chain';
import type { DrillReport } from '../domain/drill';

/** Who holds a cluster's backup lock (one backup operation per cluster at a time). */
export interface LockHolder {
  workflowId: string;
  runId: string;
  operation: string;
  since: string;
}
import { decompressor, zstdTest } from './compression';

export async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** temp file + fsync + rename + fsync(dir): readers see the old file or the new one. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  await fsyncPath(path.dirname(file));
}

/** The file in a staging folder naming the run that fills it (the sweeper removes folders whose run has ended). */
export const STAGING_OWNER = '.owner.json';

/** Backup ids name folders: refused before any path is built from them. */
export function checkedId(id: string): string {
  if (!BACKUP_ID_PATTERN.test(id)) throw new Error(`not a backup id: ${JSON.stringify(id)} (expected e.g. 20261122T140307.123Z-full)`);
  return id;
}

export interface ArtifactCheck {
  ok: boolean;
  problems: string[];
}

/**
 * Re-reads a stored artifact: size and sha256 as stored, then decompresses it end to end.
 * `full` also hashes the decompressed bytes against rawSha256 (`dbops backup validate`);
 * `frame` lets the codec check its own content checksum instead (zstd's XXH64, gzip's
 * CRC32), which proves the same at a fraction of the CPU; `stored` checks only the stored
 * bytes, for artifacts whose activity already decompressed them from disk.
 */
export type VerifyDepth = 'full' | 'frame' | 'stored';

export async function verifyArtifactFile(file: string, artifact: Artifact, depth: VerifyDepth = 'full'): Promise<ArtifactCheck> {
  const problems: string[] = [];
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    return { ok: false, problems: [`${artifact.name}: missing`] };
  }
  if (size !== artifact.size) problems.push(`${artifact.name}: size ${size}, manifest says ${artifact.size}`);
  if (depth === 'stored') {
    const sha256 = createHash('sha256');
    await pipeline(createReadStream(file), new Writable({ write(chunk: Buffer, _e, cb) { sha256.update(chunk); cb(); } }));
    const digest = sha256.digest('hex');
    if (digest !== artifact.sha256) problems.push(`${artifact.name}: sha256 ${digest}, manifest says ${artifact.sha256}`);
    return { ok: problems.length === 0, problems };
  }

  const storedHash = createHash('sha256');
  const rawHash = createHash('sha256');
  let rawSize = 0;
  const frameOnly = depth === 'frame' && artifact.compression === 'zstd';
  const codec = frameOnly ? await zstdTest() : await decompressor(artifact.compression);
  const reading = pipeline(
    createReadStream(file),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        storedHash.update(chunk);
        yield chunk;
      }
    },
    codec.input,
  );
  // zstd -t prints nothing; for the others the decompressed bytes are hashed and counted.
  const counting = pipeline(
    codec.output,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        rawHash.update(chunk);
        rawSize += chunk.length;
        cb();
      },
    }),
  );
  const results = await Promise.allSettled([reading, counting, codec.done]);
  const sha256 = storedHash.digest('hex');
  if (sha256 !== artifact.sha256) problems.push(`${artifact.name}: sha256 ${sha256}, manifest says ${artifact.sha256}`);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    problems.push(`${artifact.name}: does not decompress: ${String((failed.reason as Error)?.message ?? failed.reason).split('\n')[0]}`);
  } else if (!frameOnly) {
    const rawSha256 = rawHash.digest('hex');
    if (rawSize !== artifact.rawSize) problems.push(`${artifact.name}: decompresses to ${rawSize} bytes, manifest says ${artifact.rawSize}`);
    if (rawSha256 !== artifact.rawSha256) problems.push(`${artifact.name}: decompressed sha256 differs from the manifest`);
  }
  return { ok: problems.length === 0, problems };
}

export interface StoredBackup {
  manifest: Manifest;
  /** Absolute folder of the backup. */
  dir: string;
  /** Folder relative to the repository root. */
  relativePath: string;
}

export class LocalRepository {
  constructor(readonly root: string) {}

  clusterDir(cluster: string): string {
    if (!CLUSTER_NAME_PATTERN.test(cluster)) throw new Error(`not a cluster name: ${JSON.stringify(cluster)}`);
    return path.join(this.root, cluster);
  }

  stagingDir(cluster: string, id: string): string {
    return path.join(this.clusterDir(cluster), '.staging', checkedId(id));
  }

  absolute(relativePath: string): string {
    return path.join(this.root, relativePath);
  }

  /** A fresh, empty staging folder for this backup id (a retry starts over), marked with the run that owns it. */
  async resetStaging(cluster: string, id: string, owner?: { workflowId: string; runId: string }): Promise<string> {
    const dir = this.stagingDir(cluster, id);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (owner) await writeFile(path.join(dir, STAGING_OWNER), JSON.stringify(owner), { mode: 0o600 });
    return dir;
  }

  async removeStaging(cluster: string, id: string): Promise<void> {
    await rm(this.stagingDir(cluster, id), { recursive: true, force: true });
  }

  async readManifest(dir: string): Promise<Manifest | null> {
    try {
      return ManifestSchema.parse(JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')));
    } catch {
      return null;
    }
  }

  /** Every published backup of a cluster (optionally one type), oldest first. */
  async list(cluster: string, type?: BackupType): Promise<StoredBackup[]> {
    const types = type ? [type] : [...BACKUP_TYPES];
    const found: StoredBackup[] = [];
    for (const t of types) {
      const typeDir = path.join(this.root, cluster, t);
      for (const day of await safeReaddir(typeDir)) {
        if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) continue;
        for (const id of await safeReaddir(path.join(typeDir, day))) {
          const dir = path.join(typeDir, day, id);
          const manifest = await this.readManifest(dir);
          if (manifest) found.push({ manifest, dir, relativePath: path.relative(this.root, dir) });
        }
      }
    }
    return found.sort((a, b) => a.manifest.startedAt.localeCompare(b.manifest.startedAt) || a.manifest.id.localeCompare(b.manifest.id));
  }

  /** The drill reports of a cluster, oldest first; one still being written is skipped. */
  async drillReports(cluster: string): Promise<DrillReport[]> {
    const dir = path.join(this.root, cluster, 'drills');
    const reports: DrillReport[] = [];
    for (const id of (await safeReaddir(dir)).sort()) {
      try {
        reports.push(JSON.parse(await readFile(path.join(dir, id, 'report.json'), 'utf8')) as DrillReport);
      } catch {
        // not finished yet, or not ours
      }
    }
    return reports;
  }

  async clusters(): Promise<string[]> {
    return (await safeReaddir(this.root)).filter((name) => !name.startsWith('.'));
  }

  async find(id: string, cluster?: string): Promise<StoredBackup | null> {
    checkedId(id);
    for (const c of cluster ? [cluster] : await this.clusters()) {
      const hit = (await this.list(c)).find((b) => b.manifest.id === id);
      if (hit) return hit;
    }
    return null;
  }

  /**
   * Removes a published backup: one rename out of the catalog (it disappears from every
   * listing at once), then the files, then the type's index. Idempotent: a backup already
   * gone returns null.
   */
  async remove(cluster: string, id: string): Promise<Manifest | null> {
    checkedId(id);
    const found = (await this.list(cluster)).find((b) => b.manifest.id === id);
    const trash = path.join(this.root, cluster, '.trash', id);
    if (found) {
      await mkdir(path.dirname(trash), { recursive: true, mode: 0o700 });
      await rm(trash, { recursive: true, force: true });
      await rename(found.dir, trash);
      await fsyncPath(path.dirname(found.dir));
      await rmdir(path.dirname(found.dir)).catch(() => undefined); // the day's folder, once empty
    }
    await rm(trash, { recursive: true, force: true });
    if (found) await this.rebuildIndex(cluster, found.manifest.type, new Date());
    return found?.manifest ?? null;
  }

  async rebuildIndex(cluster: string, type: BackupType, now: Date): Promise<BackupIndex> {
    const backups = await this.list(cluster, type);
    const index: BackupIndex = IndexSchema.parse({
      formatVersion: 1,
      cluster,
      type,
      generatedAt: now.toISOString(),
      backups: backups.map((b) => ({
        id: b.manifest.id,
        path: b.relativePath,
        startedAt: b.manifest.startedAt,
        finishedAt: b.manifest.finishedAt,
        size: totalStoredBytes(b.manifest),
        rawSize: totalRawBytes(b.manifest),
        snapshot: b.manifest.snapshot,
        parentId: b.manifest.parentId,
      })),
    });
    await writeFileAtomic(path.join(this.root, cluster, type, 'index.json'), JSON.stringify(index, null, 2) + '\n');
    return index;
  }

  /**
   * Verifies the staged artifacts against the manifest, writes the manifest, and makes the
   * backup visible with one rename. Idempotent: a retry after a successful rename returns
   * the published manifest.
   */
  async publish(
    stagingDir: string,
    relativePath: string,
    manifest: ManifestDraft,
    depth: VerifyDepth = 'frame',
  ): Promise<{ manifest: Manifest | null; problems: string[] }> {
    const finalDir = this.absolute(relativePath);
    const existing = await this.readManifest(finalDir);
    if (existing && existing.id === manifest.id) {
      if (existing.workflow.runId === manifest.workflow.runId) return { manifest: existing, problems: [] }; // our own retry
      return { manifest: null, problems: [`${relativePath} already holds backup ${existing.id} of run ${existing.workflow.runId}`] };
    }

    const problems: string[] = [];
    for (const artifact of manifest.artifacts) {
      problems.push(...(await verifyArtifactFile(path.join(stagingDir, artifact.name), artifact, depth)).problems);
    }
    if (problems.length > 0) return { manifest: null, problems };

    const verified = ManifestSchema.parse({ ...manifest, status: 'verified', verifiedAt: new Date().toISOString() });
    await rm(path.join(stagingDir, STAGING_OWNER), { force: true });
    await writeFileAtomic(path.join(stagingDir, 'manifest.json'), JSON.stringify(verified, null, 2) + '\n');
    await mkdir(path.dirname(finalDir), { recursive: true, mode: 0o700 });
    await rename(stagingDir, finalDir);
    await fsyncPath(path.dirname(finalDir));
    await this.rebuildIndex(manifest.cluster, manifest.type, new Date());
    return { manifest: verified, problems: [] };
  }
}

/**
 * One backup operation per cluster at a time, as a sequence of lock generations:
 * `<cluster>/.locks/backup/<generation>.json`, each saying who holds the cluster (or that it
 * is free). The newest generation is the state. Every change, taking, taking over a dead
 * holder's lock, releasing, is the exclusive creation of the next generation, which exactly
 * one writer can win: a compare-and-swap on the generation number. Two runs that both see a
 * stale holder cannot both take the cluster over. (An object store does the same with a
 * conditional write, If-None-Match: *.)
 */
export class RepositoryLocks {
  constructor(private readonly repository: LocalRepository) {}

  private dir(cluster: string): string {
    return path.join(this.repository.clusterDir(cluster), '.locks', 'backup');
  }

  private file(cluster: string, generation: number): string {
    return path.join(this.dir(cluster), `${String(generation).padStart(12, '0')}.json`);
  }

  /** The newest generation and what it says (generation 0: never locked). */
  async current(cluster: string): Promise<{ generation: number; holder: LockHolder | null }> {
    const generations = (await safeReaddir(this.dir(cluster)))
      .map((name) => /^(\d{12})\.json$/.exec(name)?.[1])
      .filter((g): g is string => g !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const generation = generations[generations.length - 1] ?? 0;
    if (generation === 0) return { generation, holder: null };
    try {
      const state = JSON.parse(await readFile(this.file(cluster, generation), 'utf8')) as { holder: LockHolder | null };
      return { generation, holder: state.holder };
    } catch {
      return { generation, holder: { workflowId: '?', runId: '?', operation: 'an unreadable lock', since: '?' } };
    }
  }

  async holder(cluster: string): Promise<LockHolder | null> {
    return (await this.current(cluster)).holder;
  }

  /** Writes generation+1 if nobody else has: true when this writer won. */
  private async next(cluster: string, generation: number, holder: LockHolder | null): Promise<boolean> {
    await mkdir(this.dir(cluster), { recursive: true, mode: 0o700 });
    const target = this.file(cluster, generation + 1);
    const temp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify({ generation: generation + 1, holder }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, target); // fails if the generation exists: somebody else changed the lock first
      await fsyncPath(this.dir(cluster));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
    // Keep the last few generations (what happened), drop older ones.
    for (const name of await safeReaddir(this.dir(cluster))) {
      const g = /^(\d{12})\.json$/.exec(name)?.[1];
      if (g !== undefined && Number(g) < generation - 8) await rm(path.join(this.dir(cluster), name), { force: true });
    }
    return true;
  }

  /** Takes a free cluster; returns the current holder when someone else has it (null: ours now). */
  async tryAcquire(cluster: string, owner: LockHolder): Promise<LockHolder | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { generation, holder } = await this.current(cluster);
      if (holder && holder.workflowId === owner.workflowId && holder.runId === owner.runId) return null; // our own retry
      if (holder) return holder;
      if (await this.next(cluster, generation, owner)) return null;
    }
    return (await this.holder(cluster)) ?? { workflowId: '?', runId: '?', operation: 'a lock that changes too fast', since: '?' };
  }

  /**
   * Takes over the lock of a holder known to be gone, if it is still that holder's: returns
   * null when taken, else who holds it now.
   */
  async takeOver(cluster: string, owner: LockHolder, stale: LockHolder): Promise<LockHolder | null> {
    const { generation, holder } = await this.current(cluster);
    if (!holder || holder.workflowId !== stale.workflowId || holder.runId !== stale.runId) return holder ?? (await this.tryAcquire(cluster, owner));
    if (await this.next(cluster, generation, owner)) return null;
    return this.holder(cluster);
  }

  async release(cluster: string, workflowId: string, runId: string): Promise<void> {
    const { generation, holder } = await this.current(cluster);
    if (holder && holder.workflowId === workflowId && holder.runId === runId) await this.next(cluster, generation, null);
  }
}

export async function readChainState(repository: LocalRepository, cluster: string): Promise<ChainState | null> {
  try {
    return JSON.parse(await readFile(path.join(repository.clusterDir(cluster), 'chain.json'), 'utf8')) as ChainState;
  } catch {
    return null;
  }
}

export async function writeChainState(repository: LocalRepository, cluster: string, state: ChainState): Promise<void> {
  await writeFileAtomic(path.join(repository.clusterDir(cluster), 'chain.json'), JSON.stringify(state, null, 2) + '\n');
}

async function safeReaddir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}
