/**
 * The repository of one worker (or CLI): its storage driver (a local folder or an
 * S3-compatible bucket, sealed when encryption is configured), the catalog on top of it,
 * and the cluster locks. Everything below talks to the Storage interface only.
 */
import { describeRepository, type DbopsConfig, type RepositoryConfig } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { Repository } from './catalog';
import { parseMasterKey, type Keyring } from './crypto';
import { EncryptedStorage } from './encryptedStorage';
import { ClusterLocks } from './locks';
import { S3Storage } from './s3Storage';
import { LocalStorage, type Storage } from './storage';

export interface RepositoryAccess {
  storage: Storage;
  catalog: Repository;
  locks: ClusterLocks;
}

/** The master keys named in the config, read now (a missing or malformed key fails here, naming the field). */
export function keyringOf(config: RepositoryConfig): Keyring | null {
  const e = config.encryption;
  if (!e) return null;
  const keys = new Map<string, Buffer>();
  for (const [id, ref] of Object.entries(e.keys)) {
    const field = `repository.encryption.keys.${id}`;
    keys.set(id, parseMasterKey(resolveSecret(ref, field), field));
  }
  return { current: e.current, keys };
}

/** The storage driver the config names, without encryption. */
export function openStorage(config: RepositoryConfig): Storage {
  if (config.s3) {
    const s3 = config.s3;
    return new S3Storage({
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      region: s3.region,
      bucket: s3.bucket,
      prefix: s3.prefix,
      pathStyle: s3.pathStyle,
      credentials: {
        accessKeyId: resolveSecret(s3.accessKeyId, 'repository.s3.accessKeyId'),
        secretAccessKey: resolveSecret(s3.secretAccessKey, 'repository.s3.secretAccessKey'),
      },
    });
  }
  return new LocalStorage(localRepositoryRoot(config));
}

export function openRepository(config: Pick<DbopsConfig, 'repository'>): RepositoryAccess {
  const keyring = keyringOf(config.repository);
  const plain = openStorage(config.repository);
  const storage = keyring ? new EncryptedStorage(plain, keyring) : plain;
  return { storage, catalog: new Repository(storage, keyring?.current ?? null), locks: new ClusterLocks(storage) };
}

/** The folder of a local repository; for the few things that need one (benchmarks, the dev stack). */
export function localRepositoryRoot(config: RepositoryConfig): string {
  if (config.path === undefined) throw new Error(`repository ${describeRepository(config)} is not a local folder`);
  return config.path;
}

export { Repository, verifyArtifactFile, type StoredBackup, type VerifyDepth, type ArtifactCheck } from './catalog';
export { ClusterLocks, type LockHolder } from './locks';
export { readChainState, writeChainState } from './chainState';
export { readRestoreClaim, releaseRestoreClaim, writeRestoreClaim, type RestoreClaim } from './restoreClaims';
export { layout } from './layout';
export { LocalStorage, type Storage } from './storage';
