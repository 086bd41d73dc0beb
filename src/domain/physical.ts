/**
 * Physical full backups: the server's files, copied by the product's own tool while it
 * runs (MariaDB: mariadb-backup as an xbstream; MySQL: the CLONE plugin into a local
 * folder, stored as a tar), one compressed artifact, and where the binary log stood at
 * the copy's consistent point. What a restore needs to know is in the manifest's
 * `physical` section; reading the tools' reports back is here. Pure.
 */
import { z } from 'zod';

export const PHYSICAL_FORMATS = ['xbstream', 'clone-tar'] as const;
export const PhysicalFormatSchema = z.enum(PHYSICAL_FORMATS);
export type PhysicalFormat = z.infer<typeof PhysicalFormatSchema>;

/** Artifact names of a physical full: backup.xbstream.zst, backup.tar.zst (or .gz, or none). */
export const PHYSICAL_ARTIFACT_PATTERN = /^backup\.(xbstream|tar)(\.zst|\.gz)?$/;

export const PhysicalLayoutSchema = z.strictObject({
  format: PhysicalFormatSchema,
  /** The one artifact holding the files. */
  artifact: z.string().regex(PHYSICAL_ARTIFACT_PATTERN),
  /** InnoDB log sequence numbers the copy spans (mariadb-backup; null for CLONE). */
  fromLsn: z.number().int().nonnegative().nullable(),
  toLsn: z.number().int().nonnegative().nullable(),
  /** The product's version the files belong to: a restore starts the same major version. */
  serverVersion: z.string().max(200),
  /**
   * Where the binary log stood when the copy finished, when the copy's own point is not
   * exactly known (MySQL's local clone): it lies between the snapshot and here, so a
   * target by position or GTID must be at or after this (null: the snapshot is exact).
   */
  until: z.strictObject({ file: z.string().max(200), position: z.number().int().nonnegative(), gtidSet: z.string().max(100_000).nullable() }).nullable().default(null),
});
export type PhysicalLayout = z.infer<typeof PhysicalLayoutSchema>;

export function physicalArtifactName(format: PhysicalFormat, extension: string): string {
  return `backup.${format === 'xbstream' ? 'xbstream' : 'tar'}${extension}`;
}

/** key = value lines (xtrabackup_info, xtrabackup_checkpoints). */
function keyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m?.[1]) out.set(m[1], m[2] ?? '');
  }
  return out;
}

export interface PhysicalPosition {
  file: string;
  position: number;
  /** MariaDB: the GTID state at the copy's point ("GTID of the last change"); null when the server has none. */
  gtidSet: string | null;
}

const BINLOG_FILE = /^[A-Za-z0-9_.-]{1,200}\.\d{1,10}$/;
const GTID_LIST = /^\d+-\d+-\d+(,\s*\d+-\d+-\d+)*$/;

/**
 * The binlog position mariadb-backup recorded in xtrabackup_info (read under its
 * BACKUP STAGE BLOCK_COMMIT, so exact for the copy):
 *   binlog_pos = filename 'binlog.000003', position '1234', GTID of the last change '0-1-5'
 * Null when the line is missing (binary logging off) or does not read as one.
 */
export function parseMariabackupInfo(text: string): { position: PhysicalPosition | null; fromLsn: number | null; toLsn: number | null } {
  const kv = keyValues(text);
  const lsn = (key: string): number | null => {
    const v = kv.get(key);
    return v !== undefined && /^\d{1,20}$/.test(v) ? Number(v) : null;
  };
  const pos = /^filename '([^']*)', position '(\d{1,15})'(?:, GTID of the last change '([^']*)')?$/.exec(kv.get('binlog_pos') ?? '');
  let position: PhysicalPosition | null = null;
  if (pos?.[1] && BINLOG_FILE.test(pos[1])) {
    const gtid = (pos[3] ?? '').trim();
    position = { file: pos[1], position: Number(pos[2]), gtidSet: gtid && GTID_LIST.test(gtid) ? gtid.replace(/\s+/g, '') : null };
  }
  return { position, fromLsn: lsn('innodb_from_lsn'), toLsn: lsn('innodb_to_lsn') };
}

/** Major.minor of a version string ("10.11.19-MariaDB-0+deb12u1-log" -> "10.11"). */
export function majorMinor(version: string): string {
  return /^(\d+\.\d+)/.exec(version)?.[1] ?? version;
}

/**
 * Which kind of full a restore should start from, and why, in a sentence for the plan.
 * A physical full brings up a whole instance from files (no SQL to load), so it is the
 * faster start wherever the restore gets a server of its own (a drill's throwaway one);
 * into a live server only a logical full can go, one database at a time.
 */
export type RestoreSite = 'own-server' | 'live-server';

export function fullKindReason(site: RestoreSite, kind: 'physical' | 'logical', alternative: 'physical' | 'logical' | null): string {
  if (site === 'live-server') {
    return kind === 'logical'
      ? 'a logical full: the restore goes into a live server, where only SQL can be loaded (a physical full is a whole instance)'
      : 'refused: a physical full restores a whole instance and cannot be loaded into a live server';
  }
  if (kind === 'physical') return 'the physical full: its files start as a server directly (prepare + start), no SQL to load';
  return alternative === 'physical'
    ? 'a logical full: it is the newest full at or before the target (a physical one there would be older, or after the target), so the least binlog to replay'
    : 'a logical full: the cluster has no physical full of this database';
}
