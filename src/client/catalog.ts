/** Reading the repository's catalog for the CLI: show, validate, storage info. */
import { statfs } from 'node:fs/promises';
import * as path from 'node:path';
import { LocalRepository, readChainState, verifyArtifactFile, type StoredBackup } from '../activities/repository';
import type { ChainState } from '../domain/chain';
import { storageTotals, type TypeTotals } from '../domain/storage';
import type { DbopsConfig } from '../config/schema';
import { ConfigError } from '../config/load';

export async function findBackup(config: DbopsConfig, id: string, cluster?: string): Promise<StoredBackup> {
  const found = await new LocalRepository(config.repository.path).find(id, cluster);
  if (!found) throw new ConfigError(`no backup ${id} in ${config.repository.path}${cluster ? ` for cluster ${cluster}` : ''} (dbops backup list)`);
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
  const problems: string[] = [];
  const checked: Array<{ name: string; bytes: number }> = [];
  for (const artifact of stored.manifest.artifacts) {
    const result = await verifyArtifactFile(path.join(stored.dir, artifact.name), artifact);
    problems.push(...result.problems);
    checked.push({ name: artifact.name, bytes: artifact.size });
  }
  if (stored.manifest.parentId) {
    const parent = await new LocalRepository(config.repository.path).find(stored.manifest.parentId, stored.manifest.cluster);
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
  const repository = new LocalRepository(config.repository.path);
  const clusters = [];
  for (const cluster of config.clusters.map((c) => c.name)) {
    const manifests = (await repository.list(cluster)).map((b) => b.manifest);
    clusters.push({ cluster, types: storageTotals(manifests), chain: await readChainState(repository, cluster) });
  }
  let freeBytes = 0;
  let totalBytes = 0;
  try {
    const fs = await statfs(config.repository.path);
    freeBytes = fs.bavail * fs.bsize;
    totalBytes = fs.blocks * fs.bsize;
  } catch {
    // repository not created yet
  }
  return { repository: config.repository.path, freeBytes, totalBytes, clusters };
}
