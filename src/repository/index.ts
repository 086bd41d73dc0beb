/**
 * The repository of one worker (or CLI): its storage driver (a local folder or an
 * S3-compatible bucket, sealed when encryption is configured), the catalog on top of it,
 * and the cluster locks. Everything below talks to the Storage interface only.
 */
import { describeRepository, type DbopsConfig, type RepositoryConfig } from '../config/schema';
import { RetentionConfigSchema, type RetentionConfig } from '../domain/retention';
import { ReadThroughStorage } from './readThrough';
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
  /**
   * Every backup wherever it is kept: the primary, then the copies in config order (read
   * only). Restores, drills and validation read through it; opened on first use, so a
   * command that needs only the primary never needs the copies' credentials.
   */
  reader(): Repository;
  /** The configured copies, opened on first use. */
  copies(): CopyAccess[];
  /** One copy by name; throws naming the configured ones when there is none. */
  copy(name: string): CopyAccess;
  /** Lets go of network clients (object stores keep idle connections open). */
  close(): void;
}

/** A copy repository: where every backup goes after it is published, with its own retention. */
export interface CopyAccess {
  name: string;
  description: string;
  storage: Storage;
  catalog: Repository;
  locks: ClusterLocks;
  retention: RetentionConfig;
}

/** The master keys named in the config, read now (a missing or malformed key fails here, naming the field). */
export function keyringOf(config: Pick<RepositoryConfig, 'encryption'>): Keyring | null {
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
export function openStorage(config: Pick<RepositoryConfig, 'path' | 's3'>): Storage {
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
  if (config.path === undefined) throw new Error('a repository needs path or s3');
  return new LocalStorage(config.path);
}

function sealedStorage(where: Pick<RepositoryConfig, 'path' | 's3'>, encryption: RepositoryConfig['encryption']): { storage: Storage; keyId: string | null } {
  const keyring = keyringOf({ encryption });
  const plain = openStorage(where);
  return { storage: keyring ? new EncryptedStorage(plain, keyring) : plain, keyId: keyring?.current ?? null };
}

function once<T>(make: () => T): () => T {
  let made: { value: T } | null = null;
  return () => (made ??= { value: make() }).value;
}

export function openRepository(config: Pick<DbopsConfig, 'repository'> & Partial<Pick<DbopsConfig, 'copies' | 'retention'>>): RepositoryAccess {
  const { storage, keyId } = sealedStorage(config.repository, config.repository.encryption);
  const catalog = new Repository(storage, keyId);
  const copies = once((): CopyAccess[] =>
    (config.copies ?? []).map((c) => {
      const opened = sealedStorage(c, c.encryption ?? config.repository.encryption);
      return {
        name: c.name,
        description: describeRepository({ ...c, encryption: c.encryption ?? config.repository.encryption }),
        storage: opened.storage,
        catalog: new Repository(opened.storage, opened.keyId),
        locks: new ClusterLocks(opened.storage),
        retention: c.retention ?? config.retention ?? RetentionConfigSchema.parse({}),
      };
    }),
  );
  const reader = once(() => (config.copies?.length ? new Repository(new ReadThroughStorage([storage, ...openedCopies().map((c) => c.storage)])) : catalog));
  let opened = false;
  const openedCopies = () => {
    opened = true;
    return copies();
  };
  const close = () => {
    for (const s of [storage, ...(opened ? copies().map((c) => c.storage) : [])]) s.close?.();
  };
  const copy = (name: string): CopyAccess => {
    const found = openedCopies().find((c) => c.name === name);
    if (!found) throw new Error(`no copy repository named ${name} (copies: ${openedCopies().map((c) => c.name).join(', ') || 'none'})`);
    return found;
  };
  return { storage, catalog, locks: new ClusterLocks(storage), reader, copies: openedCopies, copy, close };
}

/** The folder of a local repository; for the few things that need one (benchmarks, the dev stack). */
export function localRepositoryRoot(config: Pick<RepositoryConfig, 'path' | 's3' | 'encryption'>): string {
  if (config.path === undefined) throw new Error(`repository ${describeRepository(config)} is not a local folder`);
  return config.path;
}

export { Repository, verifyArtifactFile, type StoredBackup, type VerifyDepth, type ArtifactCheck } from './catalog';
export { ClusterLocks, type LockHolder } from './locks';
export { readChainState, writeChainState } from './chainState';
export { readRestoreClaim, releaseRestoreClaim, writeRestoreClaim, type RestoreClaim } from './restoreClaims';
export { layout } from './layout';
export { LocalStorage, type Storage } from './storage';
