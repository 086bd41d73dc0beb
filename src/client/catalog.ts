/** Reading the repository's catalog for the CLI: show, validate, storage info. */
import type { ChainState } from '../domain/chain';
import { storageTotals, type TypeTotals } from '../domain/storage';
import { copyLag, type CopyLag } from '../domain/copies';
import { describeRepository, type DbopsConfig } from '../config/schema';
import { ConfigError } from '../config/load';
import { openRepository, readChainState, type RepositoryAccess, type StoredBackup } from '../repository';

export async function findBackup(config: DbopsConfig, id: string, cluster?: string): Promise<StoredBackup> {
  let found: StoredBackup | null;
  try {
    // Wherever it is kept: the primary first, then the copies.
    found = await openRepository(config).reader().find(id, cluster);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (!found) throw new ConfigError(`no backup ${id} in ${describeRepository(config.repository)}${cluster ? ` for cluster ${cluster}` : ''} (dbops backup list)`);
  return found;
}

export interface ValidationReport {
  id: string;
  ok: boolean;
  problems: string[];
  checked: Array<{ name: string; bytes: number }>;
}

/** Re-reads every artifact, checks sha256 as stored and decompresses end to end; checks the chain link. */
export async function validateBackup(config: DbopsConfig, stored: StoredBackup): Promise<ValidationReport> {
  // Wherever it is kept: the primary first, then the copies.
  const catalog = openRepository(config).reader();
  const { artifacts } = await catalog.checkBackup(stored);
  const problems = artifacts.flatMap((a) => a.problems);
  const checked = stored.manifest.artifacts.map((a) => ({ name: a.name, bytes: a.size }));
  if (stored.manifest.parentId) {
    const parent = await catalog.find(stored.manifest.parentId, stored.manifest.cluster);
    if (!parent) problems.push(`parent backup ${stored.manifest.parentId} is missing: this backup cannot be restored`);
  }
  return { id: stored.manifest.id, ok: problems.length === 0, problems, checked };
}

export interface StorageReport {
  repository: string;
  freeBytes: number;
  totalBytes: number;
  clusters: Array<{ cluster: string; types: TypeTotals[]; chain: ChainState | null }>;
  /** Each copy repository: what it holds, and how far behind the primary it is per cluster (or why it cannot be read). */
  copies: Array<{ name: string; repository: string; clusters: Array<{ cluster: string; backups: number; lag: CopyLag }>; error: string | null }>;
}

export async function storageReport(config: DbopsConfig): Promise<StorageReport> {
  const repository = openRepository(config);
  const { catalog, storage } = repository;
  const clusters = [];
  for (const cluster of config.clusters.map((c) => c.name)) {
    const manifests = (await catalog.list(cluster)).map((b) => b.manifest);
    clusters.push({ cluster, types: storageTotals(manifests), chain: await readChainState(storage, cluster) });
  }
  const capacity = await storage.capacity();
  return { repository: describeRepository(config.repository), freeBytes: capacity?.free ?? 0, totalBytes: capacity?.total ?? 0, clusters, copies: await copyStates(config, repository) };
}

export type CopyState = StorageReport['copies'][number];

/** Each copy repository: what it holds per cluster and how far behind the primary it is, or why it cannot be read. */
export async function copyStates(config: DbopsConfig, repository: RepositoryAccess = openRepository(config), now = new Date()): Promise<CopyState[]> {
  const copies: CopyState[] = [];
  for (const copy of repository.copies()) {
    const entry: CopyState = { name: copy.name, repository: copy.description, clusters: [], error: null };
    try {
      for (const cluster of config.clusters.map((c) => c.name)) {
        const primary = (await repository.catalog.list(cluster)).map((b) => b.manifest);
        const held = (await copy.catalog.list(cluster)).map((b) => b.manifest);
        entry.clusters.push({ cluster, backups: held.length, lag: copyLag(primary, held, now) });
      }
    } catch (error) {
      entry.error = (error as Error).message;
    }
    copies.push(entry);
  }
  return copies;
}
