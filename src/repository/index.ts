/**
 * The repository of one worker (or CLI): its storage driver, the catalog on top of it, and
 * the cluster locks. Everything below talks to the Storage interface only.
 */
import type { DbopsConfig } from '../config/schema';
import { Repository } from './catalog';
import { ClusterLocks } from './locks';
import { LocalStorage, type Storage } from './storage';

export interface RepositoryAccess {
  storage: Storage;
  catalog: Repository;
  locks: ClusterLocks;
}

export function openRepository(config: Pick<DbopsConfig, 'repository'>): RepositoryAccess {
  const storage = new LocalStorage(config.repository.path);
  return { storage, catalog: new Repository(storage), locks: new ClusterLocks(storage) };
}

export { Repository, verifyArtifactFile, type StoredBackup, type VerifyDepth, type ArtifactCheck } from './catalog';
export { ClusterLocks, type LockHolder } from './locks';
export { readChainState, writeChainState } from './chainState';
export { readRestoreClaim, releaseRestoreClaim, writeRestoreClaim, type RestoreClaim } from './restoreClaims';
export { layout } from './layout';
export { LocalStorage, type Storage } from './storage';
