/**
 * Names that people read: workflow ids in the UI, backup ids, repository paths.
 * Pure: safe to import from workflows.
 */
import type { BackupType } from './manifest';

/** 2026-11-22T14:03:07.123Z -> 20261122T140307Z (UTC, second precision, sorts as text). */
export function compactUtc(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Backup ids sort by time and say what they are: 20261122T140307.123Z-full. Milliseconds
 * keep two backups started within one second (scripts, catch-up runs) apart.
 */
export function backupId(type: BackupType, startedAt: Date): string {
  return `${startedAt.toISOString().replace(/[-:]/g, '')}-${type}`;
}

/**
 * Workflow ids that read well in the UI: backup-full/shop-prod/20261122T140307.123Z.
 * Milliseconds: the server refuses to reuse a workflow id within a second of its last
 * close, and a retried or scripted start can come that fast.
 */
export function backupWorkflowId(type: BackupType, cluster: string, at: Date): string {
  return `backup-${type}/${cluster}/${at.toISOString().replace(/[-:]/g, '')}`;
}

/** The one copy workflow of a cluster and copy repository: copy/shop-prod/offsite. */
export function copyWorkflowId(cluster: string, repo: string): string {
  return `copy/${cluster}/${repo}`;
}

/** repo-verify/shop-prod/20261122T140307.123Z, or repo-verify/20261122T140307.123Z for every cluster (cluster names have no capitals). */
/** The one continuous binlog archive of a cluster. */
export function binlogArchiveWorkflowId(cluster: string): string {
  return `binlog-archive/${cluster}`;
}

export function repoVerifyWorkflowId(cluster: string | null, at: Date): string {
  return `repo-verify/${cluster !== null ? `${cluster}/` : ''}${at.toISOString().replace(/[-:]/g, '')}`;
}

/** Where a backup lives inside the repository, relative to its root: shop-prod/full/2026-11-22/<id>. */
export function backupDirectory(cluster: string, type: BackupType, id: string, startedAt: Date): string {
  const day = startedAt.toISOString().slice(0, 10);
  return `${cluster}/${type}/${day}/${id}`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
