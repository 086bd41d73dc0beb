/** Reading the repository's catalog for the CLI: show, validate, storage info. */
import type { ChainState } from '../domain/chain';
import { storageTotals, type TypeTotals } from '../domain/storage';
import { describeRepository, type DbopsConfig } from '../config/schema';
import { ConfigError } from '../config/load';
import { openRepository, readChainState, type StoredBackup } from '../repository';

export async function findBackup(config: DbopsConfig, id: string, cluster?: string): Promise<StoredBackup> {
  let found: StoredBackup | null;
  try {
    found = await openRepository(config).catalog.find(id, cluster);
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
  const { catalog } = openRepository(config);
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
}

export async function storageReport(config: DbopsConfig): Promise<StorageReport> {
  const { catalog, storage } = openRepository(config);
  const clusters = [];
  for (const cluster of config.clusters.map((c) => c.name)) {
    const manifests = (await catalog.list(cluster)).map((b) => b.manifest);
    clusters.push({ cluster, types: storageTotals(manifests), chain: await readChainState(storage, cluster) });
  }
  const capacity = await storage.capacity();
  return { repository: describeRepository(config.repository), freeBytes: capacity?.free ?? 0, totalBytes: capacity?.total ?? 0, clusters };
}
