/**
 * What a repository holds that no manifest accounts for, walked folder by folder: objects
 * in a backup's folder that its manifest does not list, backup-shaped folders without a
 * manifest (an object store's move interrupted before the manifest was copied, or a
 * manifest lost), staging folders and the remains of deleted backups, and names dbops never
 * gives. Only candidates: whether one is an orphan yet (its age, its owner's run) is decided
 * by domain/repoVerify. Names found by listing are checked before they become keys.
 */
import { BACKUP_TYPES, type Manifest } from '../domain/manifest';
import type { OrphanCandidate } from '../domain/repoVerify';
import type { Repository } from './catalog';
import { layout } from './layout';
import type { Storage } from './storage';

/** A listed name inside a folder, for reports: as it is when it is an ordinary name, quoted otherwise. */
function shown(folderKey: string, name: string): string {
  return `${folderKey}/${layout.isListedName(name) ? name : JSON.stringify(name)}`;
}

/** A name that is neither a day, a backup id nor an index where dbops lists, with its age where it can be seen. */
async function stray(storage: Storage, folderKey: string, name: string): Promise<OrphanCandidate> {
  return { kind: 'stray', key: shown(folderKey, name), newest: await newestIn(storage, folderKey, [name]) };
}

/** The newest modification among a folder's objects (ISO), or null when none could be looked at. */
async function newestIn(storage: Storage, folderKey: string, names: readonly string[]): Promise<string | null> {
  let newest: number | null = null;
  for (const name of names) {
    if (!layout.isListedName(name) || name.includes('..')) continue;
    const info = await storage.stat(layout.listed(folderKey, name));
    if (info && (newest === null || info.modified.getTime() > newest)) newest = info.modified.getTime();
  }
  return newest === null ? null : new Date(newest).toISOString();
}

export type StagingCandidate = Extract<OrphanCandidate, { kind: 'staging' }>;

/**
 * Every candidate of a cluster. Staging candidates carry the run that owns them, with
 * `ownerRunning` null: the caller asks Temporal.
 */
export async function orphanCandidates(catalog: Repository, cluster: string): Promise<OrphanCandidate[]> {
  const storage = catalog.storage;
  const out: OrphanCandidate[] = [];
  const { backups, unusable } = await catalog.scan(cluster);
  const published = new Map<string, Manifest>(backups.map((b) => [b.relativePath, b.manifest]));
  const damaged = new Set(unusable.map((u) => u.key)); // reported as unusable manifests, not walked

  for (const type of BACKUP_TYPES) {
    const typeKey = layout.typeDir(cluster, type);
    for (const day of await storage.children(typeKey)) {
      if (day === 'index.json') continue;
      if (!layout.isDay(day)) {
        out.push(await stray(storage, typeKey, day));
        continue;
      }
      const dayKey = layout.dayDir(cluster, type, day);
      for (const id of await storage.children(dayKey)) {
        if (!layout.isBackupId(id)) {
          out.push(await stray(storage, dayKey, id));
          continue;
        }
        const key = layout.listedBackup(cluster, type, day, id);
        if (damaged.has(key)) continue;
        const names = await storage.children(key);
        const manifest = published.get(key);
        if (manifest) {
          const listed = new Set(['manifest.json', ...manifest.artifacts.map((a) => a.name)]);
          for (const name of names) if (!listed.has(name)) out.push({ kind: 'unlisted-object', key: shown(key, name), backupId: id });
        } else {
          out.push({ kind: 'unpublished', key, backupId: id, newest: await newestIn(storage, key, names) });
        }
      }
    }
  }

  const stagingKey = layout.stagingDir(cluster);
  for (const id of await storage.children(stagingKey)) {
    if (!layout.isBackupId(id)) {
      out.push(await stray(storage, stagingKey, id));
      continue;
    }
    const key = layout.staging(cluster, id);
    const owner = await catalog.ownerAt(key);
    out.push({ kind: 'staging', key, backupId: id, newest: await newestIn(storage, key, await storage.children(key)), owner: owner ? { workflowId: owner.workflowId, runId: owner.runId } : null, ownerRunning: null });
  }

  const trashKey = layout.trashDir(cluster);
  for (const id of await storage.children(trashKey)) {
    if (!layout.isBackupId(id)) {
      out.push(await stray(storage, trashKey, id));
      continue;
    }
    const key = layout.trash(cluster, id);
    out.push({ kind: 'trash', key, backupId: id, newest: await newestIn(storage, key, await storage.children(key)) });
  }
  return out;
}
