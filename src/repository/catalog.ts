/**
 * The catalog: every backup is a folder holding its artifacts and a manifest.json, published
 * by moving a verified staging folder into place (or, on object stores, by writing the
 * manifest last in the final folder), so a reader sees a whole backup or none.
 * The per-type index.json is derived from the manifests (a cache; the manifests are the
 * truth). Everything goes through the Storage interface and the layout module.
 *
 * Longer than most files on purpose: publishing, copying in and re-reading a backup share
 * one idea of what a verified artifact is, and keeping them in one class keeps that idea
 * in one place.
 */
import { createHash } from 'node:crypto';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DrillReport } from '../domain/drill';
import { RepoVerifyReportSchema, type RepoVerifyReport } from '../domain/repoVerify';
import type { KillReport } from '../domain/queryKiller';
import {
  BACKUP_TYPES,
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
import { decompressor, zstdTest } from '../tools/compression';
import { SealError } from './crypto';
import { layout } from './layout';
import { LocalStorage, type Storage } from './storage';
import * as path from 'node:path';

export interface ArtifactCheck {
  ok: boolean;
  problems: string[];
}

/** A re-read as a repository verification records it: also whether the object was there, and how much was read. */
export interface ArtifactReread extends ArtifactCheck {
  missing: boolean;
  /** Stored bytes read (after decryption, where the storage seals). */
  bytesRead: number;
}

/** Every artifact of one backup re-read (see Repository.checkBackup). */
export interface BackupCheck {
  artifacts: Array<ArtifactReread & { name: string; key: string }>;
}

/** A published backup found by id, or the reason its folder cannot be believed. */
export type Located = { backup: StoredBackup } | { unusable: { key: string; problem: string } };

/**
 * Re-reading a stored artifact: size and sha256 as stored, then decompressed end to end.
 * `full` also hashes the decompressed bytes against rawSha256 (`dbops backup validate`);
 * `frame` lets the codec check its own content checksum instead (zstd's XXH64, gzip's
 * CRC32), which proves the same at a fraction of the CPU; `stored` checks only the stored
 * bytes, for artifacts whose activity already decompressed them from disk.
 */
export type VerifyDepth = 'full' | 'frame' | 'stored';

export interface StoredBackup {
  manifest: Manifest;
  /** The backup's folder as a repository key (relative path). */
  relativePath: string;
  /** The folder on disk, where the storage has one. */
  dir: string | null;
}

export interface StagingOwner {
  workflowId: string;
  runId: string;
}

export class Repository {
  /** `sealedWith`: the key id the storage seals new objects with (null: not encrypted), recorded in each manifest. */
  constructor(
    readonly storage: Storage,
    private readonly sealedWith: string | null = null,
  ) {}

  /** Where a path a person can open is useful (CLI output); null for object stores. */
  localPath(key: string): string | null {
    return this.storage.localPath ? this.storage.localPath(key) : null;
  }

  /** Where a backup is written before it is published: its staging folder, or its final folder on stores that publish in place. */
  workKey(cluster: string, id: string): string {
    return this.storage.publishesInPlace ? layout.backupOfId(cluster, id) : layout.staging(cluster, id);
  }

  /** A fresh, empty folder to write this backup into (a retry starts over), marked with the run that owns it. */
  async resetStaging(cluster: string, id: string, owner?: StagingOwner): Promise<string> {
    const key = this.workKey(cluster, id);
    // In place, the folder is the backup's own: never clear one that is already published.
    if (this.storage.publishesInPlace && (await this.storage.stat(layout.manifest(key)))) throw new Error(`${key} already holds a published backup`);
    await this.storage.removeTree(key);
    if (owner) await this.storage.writeText(layout.owner(key), JSON.stringify(owner));
    return key;
  }

  async removeStaging(cluster: string, id: string): Promise<void> {
    const key = this.workKey(cluster, id);
    if (this.storage.publishesInPlace && (await this.storage.stat(layout.manifest(key)))) return;
    await this.storage.removeTree(key);
  }

  /** Backup folders without a manifest on a store that publishes in place: runs in progress, or their leftovers. */
  async unpublished(cluster: string): Promise<string[]> {
    if (!this.storage.publishesInPlace) return [];
    const ids: string[] = [];
    for (const t of BACKUP_TYPES) {
      for (const day of await this.storage.children(layout.typeDir(cluster, t))) {
        if (!layout.isDay(day)) continue;
        for (const id of await this.storage.children(layout.dayDir(cluster, t, day))) {
          if (layout.isBackupId(id) && !(await this.storage.stat(layout.manifest(layout.listedBackup(cluster, t, day, id))))) ids.push(id);
        }
      }
    }
    return ids;
  }

  /** The run filling this backup's work folder (see workKey). */
  async stagingOwner(cluster: string, id: string): Promise<StagingOwner | null> {
    return this.ownerAt(this.workKey(cluster, id));
  }

  /** The run that marked a folder as its own (.owner.json), if any. */
  async ownerAt(folderKey: string): Promise<StagingOwner | null> {
    try {
      const parsed = JSON.parse((await this.storage.readText(layout.owner(folderKey))) ?? 'null') as StagingOwner | null;
      return parsed && typeof parsed.workflowId === 'string' ? parsed : null;
    } catch {
      return null;
    }
  }

  /** A manifest read back from storage: hostile until parsed (ids, names and cluster checked). */
  async readManifest(backupKey: string): Promise<Manifest | null> {
    const read = await this.tryManifest(backupKey);
    return 'manifest' in read ? read.manifest : null;
  }

  /** The manifest, none (no manifest.json: not a published backup), or why it cannot be believed. */
  private async tryManifest(backupKey: string): Promise<{ manifest: Manifest } | { problem: string | null }> {
    let text: string | null;
    try {
      text = await this.storage.readText(layout.manifest(backupKey));
    } catch (error) {
      return { problem: (error as Error).message }; // unreadable, or fails authentication in an encrypted repository
    }
    if (text === null) return { problem: null };
    try {
      return { manifest: ManifestSchema.parse(JSON.parse(text)) };
    } catch {
      return { problem: `${layout.manifest(backupKey)}: not a valid manifest` };
    }
  }

  /** Every published backup of a cluster (optionally one type), oldest first. */
  async list(cluster: string, type?: BackupType): Promise<StoredBackup[]> {
    return (await this.scan(cluster, type)).backups;
  }

  /**
   * The published backups, and the folders that look like backups but cannot be used: a
   * manifest that is damaged, altered (fails authentication) or disagrees with its folder.
   * Those are never restored from; listing and verification report them.
   */
  async scan(cluster: string, type?: BackupType): Promise<{ backups: StoredBackup[]; unusable: Array<{ key: string; problem: string }> }> {
    const types = type ? [type] : [...BACKUP_TYPES];
    const found: StoredBackup[] = [];
    const unusable: Array<{ key: string; problem: string }> = [];
    for (const t of types) {
      for (const day of await this.storage.children(layout.typeDir(cluster, t))) {
        if (!layout.isDay(day)) continue;
        for (const id of await this.storage.children(layout.dayDir(cluster, t, day))) {
          if (!layout.isBackupId(id)) continue;
          const read = await this.readFolder(cluster, t, id, layout.listedBackup(cluster, t, day, id));
          if (read && 'backup' in read) found.push(read.backup);
          else if (read) unusable.push(read.unusable);
        }
      }
    }
    found.sort((a, b) => a.manifest.startedAt.localeCompare(b.manifest.startedAt) || a.manifest.id.localeCompare(b.manifest.id));
    return { backups: found, unusable };
  }

  /** One backup folder: its backup, why it cannot be used, or null when it holds no manifest. */
  private async readFolder(cluster: string, type: BackupType, id: string, key: string): Promise<Located | null> {
    const read = await this.tryManifest(key);
    if (!('manifest' in read)) return read.problem ? { unusable: { key, problem: read.problem } } : null;
    const manifest = read.manifest;
    // The folder's own name, type and cluster must agree with what the manifest says.
    if (manifest.id === id && manifest.type === type && manifest.cluster === cluster) return { backup: { manifest, relativePath: key, dir: this.localPath(key) } };
    return { unusable: { key, problem: `${layout.manifest(key)}: describes ${manifest.cluster}/${manifest.type}/${manifest.id}, not the folder it is in` } };
  }

  /**
   * A backup of a cluster by id, read where its id says it lives (one manifest read, not a
   * listing); a folder elsewhere is found by listing its type. Null: not in the catalog.
   */
  async locate(cluster: string, id: string): Promise<Located | null> {
    if (!layout.isBackupId(id)) throw new Error(`not a backup id: ${JSON.stringify(id)}`);
    const type = id.slice(id.lastIndexOf('-') + 1) as BackupType;
    const direct = await this.readFolder(cluster, type, id, layout.backupOfId(cluster, id));
    if (direct) return direct;
    const { backups, unusable } = await this.scan(cluster, type);
    const backup = backups.find((b) => b.manifest.id === id);
    if (backup) return { backup };
    const damaged = unusable.find((u) => u.key.endsWith(`/${id}`));
    return damaged ? { unusable: damaged } : null;
  }

  async clusters(): Promise<string[]> {
    return (await this.storage.children('')).filter((name) => !name.startsWith('.'));
  }

  async find(id: string, cluster?: string): Promise<StoredBackup | null> {
    if (!layout.isBackupId(id)) throw new Error(`not a backup id: ${JSON.stringify(id)} (expected e.g. 20261122T140307.123Z-full)`);
    for (const c of cluster ? [cluster] : await this.clusters()) {
      const hit = (await this.list(c)).find((b) => b.manifest.id === id);
      if (hit) return hit;
    }
    return null;
  }

  /**
   * Removes a published backup: one move out of the catalog (it disappears from every
   * listing at once), then the files, then the type's index. Idempotent: a backup already
   * gone returns null.
   */
  async remove(cluster: string, id: string): Promise<Manifest | null> {
    if (!layout.isBackupId(id)) throw new Error(`not a backup id: ${JSON.stringify(id)}`);
    const found = (await this.list(cluster)).find((b) => b.manifest.id === id);
    const trash = layout.trash(cluster, id);
    if (found) {
      await this.storage.removeTree(trash);
      await this.storage.moveTree(found.relativePath, trash);
      await this.storage.pruneEmpty(found.relativePath.slice(0, found.relativePath.lastIndexOf('/'))); // the day's folder, once empty
    }
    await this.storage.removeTree(trash);
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
    await this.storage.writeText(layout.index(cluster, type), JSON.stringify(index, null, 2) + '\n');
    return index;
  }

  /** Re-reads one stored artifact (see VerifyDepth). */
  async verifyArtifact(folderKey: string, artifact: Artifact, depth: VerifyDepth = 'full'): Promise<ArtifactCheck> {
    return this.verifyObject(layout.artifact(folderKey, artifact.name), artifact, depth);
  }

  /** Re-reads the object at `key` as the artifact the manifest describes. */
  async verifyObject(key: string, artifact: Artifact, depth: VerifyDepth = 'full'): Promise<ArtifactCheck> {
    const { ok, problems } = await this.reread(key, artifact, depth);
    return { ok, problems };
  }

  /**
   * Every artifact of a published backup re-read (`dbops backup validate`, repository
   * verification), or those named in `only`; `onBytes` hears of every chunk read, for
   * heartbeats on long reads.
   */
  async checkBackup(stored: StoredBackup, depth: VerifyDepth = 'full', onBytes?: (bytes: number, artifact: string) => void, only?: ReadonlySet<string>): Promise<BackupCheck> {
    const artifacts: BackupCheck['artifacts'] = [];
    for (const artifact of stored.manifest.artifacts) {
      if (only && !only.has(artifact.name)) continue;
      const key = layout.artifact(stored.relativePath, artifact.name);
      const result = await this.reread(key, artifact, depth, onBytes ? (n) => onBytes(n, artifact.name) : undefined);
      artifacts.push({ name: artifact.name, key, ...result });
    }
    return { artifacts };
  }

  /** One stored object against the record of it (size, sha256, decryption, decompression, raw sha256). */
  async reread(key: string, artifact: Artifact, depth: VerifyDepth, onBytes?: (bytes: number) => void): Promise<ArtifactReread> {
    const problems: string[] = [];
    const info = await this.storage.stat(key);
    if (!info) return { ok: false, problems: [`${artifact.name}: missing`], missing: true, bytesRead: 0 };
    if (info.size !== artifact.size) problems.push(`${artifact.name}: size ${info.size}, manifest says ${artifact.size}`);
    const storedHash = createHash('sha256');
    let bytesRead = 0;
    const counted = (chunk: Buffer): void => {
      storedHash.update(chunk);
      bytesRead += chunk.length;
      onBytes?.(bytesRead);
    };
    const done = (): ArtifactReread => ({ ok: problems.length === 0, problems, missing: false, bytesRead });
    if (depth === 'stored') {
      try {
        await pipeline(await this.storage.openRead(key), new Writable({ write(chunk: Buffer, _e, cb) { counted(chunk); cb(); } }));
      } catch (error) {
        if (error instanceof SealError) return { ok: false, problems: [error.message], missing: false, bytesRead };
        throw error;
      }
      const digest = storedHash.digest('hex');
      if (digest !== artifact.sha256) problems.push(`${artifact.name}: sha256 ${digest}, manifest says ${artifact.sha256}`);
      return done();
    }
    const rawHash = createHash('sha256');
    let rawSize = 0;
    const frameOnly = depth === 'frame' && artifact.compression === 'zstd';
    // Opened before the codec starts: an object that cannot be read must not leave a codec waiting on its input.
    let source: Readable;
    try {
      source = await this.storage.openRead(key);
    } catch (error) {
      return { ok: false, problems: [`${artifact.name}: cannot be read: ${(error as Error).message}`], missing: false, bytesRead };
    }
    const codec = frameOnly ? await zstdTest() : await decompressor(artifact.compression);
    const reading = pipeline(
      source,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          counted(chunk);
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
    if (failed && failed.reason instanceof SealError) {
      problems.push(failed.reason.message); // names the object and the damaged chunk
    } else if (failed) {
      problems.push(`${artifact.name}: does not decompress: ${String((failed.reason as Error)?.message ?? failed.reason).split('\n')[0]}`);
    } else if (!frameOnly) {
      const rawSha256 = rawHash.digest('hex');
      if (rawSize !== artifact.rawSize) problems.push(`${artifact.name}: decompresses to ${rawSize} bytes, manifest says ${artifact.rawSize}`);
      if (rawSha256 !== artifact.rawSha256) problems.push(`${artifact.name}: decompressed sha256 differs from the manifest`);
    }
    return done();
  }

  /**
   * Verifies the staged artifacts against the manifest, writes the manifest, and makes the
   * backup visible by moving the folder into place. Idempotent: a retry after a successful
   * move returns the published manifest.
   */
  async publish(draft: ManifestDraft, finalKey: string, depth: VerifyDepth = 'frame'): Promise<{ manifest: Manifest | null; problems: string[] }> {
    const existing = await this.readManifest(finalKey);
    if (existing && existing.id === draft.id) {
      if (existing.workflow.runId === draft.workflow.runId) return { manifest: existing, problems: [] }; // our own retry
      return { manifest: null, problems: [`${finalKey} already holds backup ${existing.id} of run ${existing.workflow.runId}`] };
    }
    const staging = this.workKey(draft.cluster, draft.id);
    if (this.storage.publishesInPlace && staging !== finalKey) return { manifest: null, problems: [`${draft.id} belongs in ${staging}, not ${finalKey}`] };
    const problems: string[] = [];
    for (const artifact of draft.artifacts) problems.push(...(await this.verifyArtifact(staging, artifact, depth)).problems);
    if (problems.length > 0) return { manifest: null, problems };

    const encryption = this.sealedWith ? { keyId: this.sealedWith, scheme: 'aes-256-gcm-stream-v1' } : null;
    const verified = ManifestSchema.parse({ ...draft, status: 'verified', verifiedAt: new Date().toISOString(), encryption });
    await this.storage.remove(layout.owner(staging));
    // The manifest comes last: until it exists, no listing shows the backup.
    await this.storage.writeText(layout.manifest(staging), JSON.stringify(verified, null, 2) + '\n');
    if (staging !== finalKey) await this.storage.moveTree(staging, finalKey);
    await this.rebuildIndex(draft.cluster, draft.type, new Date());
    return { manifest: verified, problems: [] };
  }

  /**
   * Copies a published backup from another repository into this one, as publishing does:
   * every artifact streamed into staging (decrypted with the source's key, sealed with
   * this repository's), its sha256 and size checked on the way, re-read from here, then the
   * manifest written and the folder moved into place. Idempotent: a backup already here is
   * left alone. `onBytes` reports progress (for heartbeats).
   */
  async importBackup(stored: { manifest: Manifest; relativePath: string }, source: Storage, onBytes: (bytes: number) => void = () => undefined): Promise<{ copied: boolean; bytes: number; problems: string[] }> {
    const m = stored.manifest;
    const finalKey = layout.listedBackup(m.cluster, m.type, m.startedAt.slice(0, 10), m.id);
    if (finalKey !== stored.relativePath) return { copied: false, bytes: 0, problems: [`${stored.relativePath} is not where ${m.id} belongs (${finalKey})`] };
    const existing = await this.readManifest(finalKey);
    if (existing?.id === m.id) return { copied: false, bytes: 0, problems: [] };
    const staging = await this.resetStaging(m.cluster, m.id);
    const publishedHere = staging === finalKey;
    let bytes = 0;
    const problems: string[] = [];
    for (const artifact of m.artifacts) {
      const hash = createHash('sha256');
      let size = 0;
      const sink = await this.storage.openWrite(layout.artifact(staging, artifact.name));
      await pipeline(
        await source.openRead(layout.artifact(stored.relativePath, artifact.name)),
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            onBytes((bytes += chunk.length));
            yield chunk;
          }
        },
        sink.stream,
      );
      await sink.done;
      const sha256 = hash.digest('hex');
      if (sha256 !== artifact.sha256 || size !== artifact.size) problems.push(`${m.id}/${artifact.name}: read ${size} bytes with sha256 ${sha256} from the source, the manifest says ${artifact.size} bytes, ${artifact.sha256}`);
      else problems.push(...(await this.verifyArtifact(staging, artifact, 'stored')).problems);
    }
    if (problems.length > 0) {
      await this.removeStaging(m.cluster, m.id);
      return { copied: false, bytes, problems };
    }
    const encryption = this.sealedWith ? { keyId: this.sealedWith, scheme: 'aes-256-gcm-stream-v1' } : null;
    await this.storage.writeText(layout.manifest(staging), JSON.stringify(ManifestSchema.parse({ ...m, encryption }), null, 2) + '\n');
    if (!publishedHere) await this.storage.moveTree(staging, finalKey);
    await this.rebuildIndex(m.cluster, m.type, new Date());
    return { copied: true, bytes, problems: [] };
  }

  /** The drill reports of a cluster, oldest first; one still being written is skipped. */
  async drillReports(cluster: string): Promise<DrillReport[]> {
    const reports: DrillReport[] = [];
    for (const id of await this.storage.children(layout.drills(cluster))) {
      if (!layout.isDrillId(id)) continue;
      try {
        const text = await this.storage.readText(layout.drillReport(cluster, id, 'json'));
        if (text) reports.push(JSON.parse(text) as DrillReport);
      } catch {
        // not finished yet, or not ours
      }
    }
    return reports;
  }

  async drillReportText(cluster: string, drillId: string, kind: 'json' | 'md'): Promise<string | null> {
    return this.storage.readText(layout.drillReport(cluster, drillId, kind));
  }

  async storeDrillReport(report: DrillReport, markdown: string): Promise<{ json: string; markdown: string }> {
    const json = layout.drillReport(report.cluster, report.drillId, 'json');
    const md = layout.drillReport(report.cluster, report.drillId, 'md');
    await this.storage.writeText(json, JSON.stringify(report, null, 2) + '\n');
    await this.storage.writeText(md, markdown);
    return { json: this.localPath(json) ?? json, markdown: this.localPath(md) ?? md };
  }

  async storeVerifyReport(report: RepoVerifyReport): Promise<string> {
    const key = layout.verifyReport(report.cluster, report.runKey);
    await this.storage.writeText(key, JSON.stringify(report, null, 2) + '\n');
    return this.localPath(key) ?? key;
  }

  async storeKillReport(report: KillReport): Promise<string> {
    const key = layout.killReport(report.cluster, report.runKey);
    await this.storage.writeText(key, JSON.stringify(report, null, 2) + '\n');
    return this.localPath(key) ?? key;
  }

  /** A schema change's record (what was asked, checked, built, verified, rolled back). */
  async storeSchemaChangeReport(cluster: string, runKey: string, report: unknown): Promise<string> {
    const key = layout.schemaChangeReport(cluster, runKey);
    await this.storage.writeText(key, JSON.stringify(report, null, 2) + '\n');
    return this.localPath(key) ?? key;
  }

  /** The newest verification report of a cluster that can be read; null when there is none. */
  async latestVerifyReport(cluster: string): Promise<RepoVerifyReport | null> {
    const names = (await this.storage.children(layout.verifyDir(cluster))).filter(layout.isVerifyReport).sort().reverse();
    for (const name of names) {
      try {
        const parsed = RepoVerifyReportSchema.safeParse(JSON.parse((await this.storage.readText(layout.verifyReport(cluster, name.replace(/\.json$/, '')))) ?? 'null'));
        if (parsed.success) return parsed.data;
      } catch {
        // damaged or not ours: the one before it
      }
    }
    return null;
  }

  async storeArchiveReport(cluster: string, job: string, runKey: string, report: unknown): Promise<string> {
    const key = layout.archiveReport(cluster, job, runKey);
    await this.storage.writeText(key, JSON.stringify(report, null, 2) + '\n');
    return this.localPath(key) ?? key;
  }
}

/** Re-reads an artifact file anywhere on disk (a copy taken aside, a test's corrupted file). */
export function verifyArtifactFile(file: string, artifact: Artifact, depth: VerifyDepth = 'full'): Promise<ArtifactCheck> {
  return new Repository(new LocalStorage(path.dirname(file))).verifyObject(path.basename(file), artifact, depth);
}
