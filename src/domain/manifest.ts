/**
 * The catalog's source of truth: one manifest.json per backup.
 * Pure: safe to import from workflows.
 */
import { z } from 'zod';
import { CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE } from './identifiers';
import { ParallelLayoutSchema } from './parallelDump';
import { PhysicalLayoutSchema } from './physical';

export const BACKUP_TYPES = ['full', 'incremental', 'differential', 'schema', 'emergency'] as const;
export const BackupTypeSchema = z.enum(BACKUP_TYPES);
export type BackupType = z.infer<typeof BackupTypeSchema>;

export const CompressionSchema = z.enum(['zstd', 'gzip', 'none']);
export type Compression = z.infer<typeof CompressionSchema>;

export const ProductSchema = z.enum(['mariadb', 'mysql']);
export type Product = z.infer<typeof ProductSchema>;

/** What we learned about the server when the backup started. */
export const ServerIdentitySchema = z.object({
  product: ProductSchema,
  version: z.string(),
  serverId: z.number().int(),
  /** MySQL's @@server_uuid; MariaDB has none. */
  serverUuid: z.string().nullable(),
  hostname: z.string(),
  binlogFormat: z.string().nullable(),
  gtidMode: z.string().nullable(),
  /** Set when the backup was taken from a replica: its source (host:port) and how far behind it was; the snapshot's GTID set names the source's transactions it holds. */
  replicaOf: z.object({ source: z.string(), lagSeconds: z.number().nullable() }).nullish(),
});
export type ServerIdentity = z.infer<typeof ServerIdentitySchema>;

/** A position in the binary log, as a dump or a backup tool reported it. */
export const BinlogPositionSchema = z.object({
  file: z.string(),
  position: z.number().int().nonnegative(),
  /** MariaDB gtid_slave_pos / MySQL gtid_purged at the snapshot, when the server has GTIDs. */
  gtidSet: z.string().nullable(),
});
export type BinlogPosition = z.infer<typeof BinlogPositionSchema>;

/** Backup ids name folders: 20261122T140307.123Z-full, nothing else (a manifest is read back from storage: hostile until parsed). */
export const BACKUP_ID_PATTERN = /^\d{8}T\d{6}(\.\d{3})?Z-(full|incremental|differential|schema|emergency)$/;
export const BackupIdSchema = z.string().regex(BACKUP_ID_PATTERN, 'a backup id such as 20261122T140307.123Z-full');
/** Artifact file names: one path segment, no leading dot. */
export const ARTIFACT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export const ArtifactSchema = z.object({
  /** File name inside the backup's folder. */
  name: z.string().regex(ARTIFACT_NAME_PATTERN, 'one file name (letters, digits, ".", "-", "_")'),
  compression: CompressionSchema,
  /** Bytes stored. */
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Bytes before compression and their sha256: validation decompresses end to end. */
  rawSize: z.number().int().nonnegative(),
  rawSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Artifact = z.infer<typeof ArtifactSchema>;

export const TableEntrySchema = z.object({
  database: z.string(),
  table: z.string(),
  /** Rows in the dump itself (counted from the stream), so exact at the snapshot. */
  rows: z.number().int().nonnegative(),
});
export type TableEntry = z.infer<typeof TableEntrySchema>;

export const SchemaObjectsSchema = z.object({
  views: z.array(z.string()),
  routines: z.number().int().nonnegative(),
  triggers: z.number().int().nonnegative(),
  events: z.number().int().nonnegative(),
});

export const GtidIntervalSchema = z.object({ source: z.string(), first: z.string(), last: z.string() });

/** What an incremental or differential backup covers of the binary log. */
export const BinlogRangeSchema = z.object({
  /** Replay starts at startPosition of startFile (the parent's end), ends at the end of endFile. */
  startFile: z.string(),
  startPosition: z.number().int().nonnegative(),
  endFile: z.string(),
  endPosition: z.number().int().nonnegative(),
  files: z.array(z.string()).min(1),
  firstEventTime: z.string().nullable(),
  lastEventTime: z.string().nullable(),
  gtids: z.array(GtidIntervalSchema),
  transactions: z.number().int().nonnegative(),
});
export type BinlogRange = z.infer<typeof BinlogRangeSchema>;

export const RetentionClassSchema = z.enum(['routine', 'emergency', 'schema']);

export const ManifestSchema = z.object({
  formatVersion: z.literal(1),
  id: BackupIdSchema,
  type: BackupTypeSchema,
  cluster: z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE),
  status: z.enum(['verified']),
  retentionClass: RetentionClassSchema,
  parentId: BackupIdSchema.nullable(),
  /** The full backup this one's chain starts from (null for fulls, schema and emergency). */
  baseFullId: BackupIdSchema.nullable().default(null),
  startedAt: z.string(),
  finishedAt: z.string(),
  verifiedAt: z.string(),
  durationMs: z.number().int().nonnegative(),
  server: ServerIdentitySchema,
  tool: z.object({ name: z.string(), version: z.string() }),
  databases: z.array(z.string()),
  snapshot: BinlogPositionSchema.nullable(),
  binlogs: BinlogRangeSchema.nullable().default(null),
  tables: z.array(TableEntrySchema),
  objects: SchemaObjectsSchema,
  artifacts: z.array(ArtifactSchema).min(1),
  /** A chunked (parallel) full: which artifacts are the schema, the triggers and the chunks (null: one dump artifact). */
  parallel: ParallelLayoutSchema.nullish(),
  /** A physical full: the server's files in one artifact (null: a logical backup). */
  physical: PhysicalLayoutSchema.nullish(),
  workflow: z.object({ workflowId: z.string(), runId: z.string() }),
  requestedBy: z.string().nullable(),
  reason: z.string().nullable(),
  /** Set by the repository that published it: the key every object of this backup is sealed with. */
  encryption: z.object({ keyId: z.string(), scheme: z.literal('aes-256-gcm-stream-v1') }).nullable().default(null),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** Per-type index: derived from the manifests, never edited by hand. */
export const IndexSchema = z.object({
  formatVersion: z.literal(1),
  cluster: z.string(),
  type: BackupTypeSchema,
  generatedAt: z.string(),
  backups: z.array(
    z.object({
      id: z.string(),
      path: z.string(),
      startedAt: z.string(),
      finishedAt: z.string(),
      size: z.number().int().nonnegative(),
      rawSize: z.number().int().nonnegative(),
      snapshot: BinlogPositionSchema.nullable(),
      binlogs: z.object({ startFile: z.string(), startPosition: z.number(), endFile: z.string(), endPosition: z.number() }).nullable().default(null),
      parentId: z.string().nullable(),
    }),
  ),
});
export type BackupIndex = z.infer<typeof IndexSchema>;

export function totalStoredBytes(manifest: Manifest): number {
  return manifest.artifacts.reduce((sum, a) => sum + a.size, 0);
}

export function totalRawBytes(manifest: Manifest): number {
  return manifest.artifacts.reduce((sum, a) => sum + a.rawSize, 0);
}

/** Space saved by compression, 0..1 (the target is >= 0.70). */
export function spaceSaving(manifest: Manifest): number {
  const raw = totalRawBytes(manifest);
  return raw === 0 ? 0 : 1 - totalStoredBytes(manifest) / raw;
}

/** What the workflow assembles; the repository adds status and verifiedAt after re-reading. */
export type ManifestDraft = Omit<Manifest, 'status' | 'verifiedAt' | 'encryption'>;

/** Where replay continues after this backup: a full's snapshot, or the end of the binlogs copied. */
export function coverageEnd(m: Pick<Manifest, 'snapshot' | 'binlogs'>): { file: string; position: number } | null {
  if (m.binlogs) return { file: m.binlogs.endFile, position: m.binlogs.endPosition };
  if (m.snapshot) return { file: m.snapshot.file, position: m.snapshot.position };
  return null;
}
