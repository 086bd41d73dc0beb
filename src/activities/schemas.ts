/**
 * The inputs activities accept, parsed at their boundary (see context.accept). Most carry
 * names; the larger ones (a restore plan, a manifest draft, captured triggers) are what an
 * earlier activity of the same run produced, and are checked for shape and for every name
 * that becomes a path or an identifier before anything is done with them.
 */
import { PhysicalFormatSchema, PhysicalLayoutSchema } from '../domain/physical';
import { z } from 'zod';
import { TIMELINE_PATTERN } from '../domain/binlogArchive';
import { APPROVAL_ACTIONS } from '../domain/approval';
import { ArchiveJobSchema } from '../domain/archive';
import { BACKUP_TYPES, ArtifactSchema, BackupIdSchema, ManifestSchema, ProductSchema, BinlogPositionSchema } from '../domain/manifest';
import { CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE, SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE } from '../domain/identifiers';
import { RestoreTargetSchema } from '../domain/inputs';
import { ChunkRangeSchema, ChunkSchema, ParallelLayoutSchema } from '../domain/parallelDump';

export const cluster = z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE);
export const identifier = z.string().regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE);
const binlogFile = z.string().regex(/^[A-Za-z0-9_.-]{1,200}\.\d{1,10}$/, 'a binlog file name');
const backupKey = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}\/(full|incremental|differential|schema|emergency)\/\d{4}-\d{2}-\d{2}\/[0-9T.Z]+-[a-z]+$/, 'a backup folder in the repository');
const artifactName = ArtifactSchema.shape.name;
const checksum = z.strictObject({ rows: z.number().int().nonnegative(), sum: z.string().regex(/^-?\d+$/), xor: z.string().regex(/^-?\d+$/) });

export const ClusterInput = z.strictObject({ cluster });

export const ResolvedTargetSchema = RestoreTargetSchema.refine((t) => t.kind !== 'beforeMatching', 'a resolved target (time, position, GTID or latest)');

export const RestorePlanSchema = z.strictObject({
  cluster,
  database: identifier,
  target: ResolvedTargetSchema,
  full: z.strictObject({
    id: BackupIdSchema,
    path: backupKey,
    artifact: artifactName,
    product: ProductSchema,
    tables: z.array(z.string().max(64)),
    snapshot: BinlogPositionSchema,
    parallel: z
      .strictObject({
        triggers: ParallelLayoutSchema.shape.triggers,
        chunks: z.array(z.strictObject({ table: identifier, artifact: ChunkSchema.shape.artifact, rows: z.number().int().nonnegative(), range: ChunkRangeSchema.nullable() })).max(200_000),
      })
      .optional(),
    physical: z
      .strictObject({
        format: PhysicalFormatSchema,
        artifact: PhysicalLayoutSchema.shape.artifact,
        rawSha256: z.string().regex(/^[0-9a-f]{64}$/),
        rawSize: z.number().int().nonnegative(),
        serverVersion: z.string().max(200),
        deltas: z
          .array(z.strictObject({ id: BackupIdSchema, path: backupKey, artifact: PhysicalLayoutSchema.shape.artifact, rawSha256: z.string().regex(/^[0-9a-f]{64}$/), rawSize: z.number().int().nonnegative() }))
          .max(10_000)
          .optional(),
      })
      .optional(),
  }),
  why: z.string().max(1000).optional(),
  chain: z.array(z.strictObject({ id: BackupIdSchema, type: z.enum(['incremental', 'differential']) })),
  binlogs: z.array(
    z.union([
      z.strictObject({ backupId: BackupIdSchema, path: backupKey, file: binlogFile, artifact: artifactName }),
      z.strictObject({
        timeline: z.string().regex(TIMELINE_PATTERN, 'an archive timeline such as t20261202T101500Z'),
        file: binlogFile,
        segments: z.array(z.strictObject({ start: z.number().int().nonnegative(), end: z.number().int().positive(), artifact: artifactName, rawSha256: z.string().regex(/^[0-9a-f]{64}$/) })).min(1),
      }),
    ]),
  ),
  archive: z.strictObject({ timeline: z.string().regex(TIMELINE_PATTERN), files: z.number().int().nonnegative(), coveredUntil: z.string().nullable() }).nullable().optional(),
  start: z.strictObject({ file: binlogFile, position: z.number().int().nonnegative(), gtidSet: z.string().nullable() }),
  stop: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('datetime'), value: z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/) }),
    z.strictObject({ kind: z.literal('position'), file: binlogFile, position: z.number().int().nonnegative() }),
    z.strictObject({ kind: z.literal('gtid'), gtid: z.string().regex(/^[0-9a-f:,-]{5,4000}$/) }),
    z.strictObject({ kind: z.literal('end') }),
  ]),
  window: z.strictObject({ from: z.string().nullable(), to: z.string().nullable() }),
  storedBytes: z.number().int().nonnegative(),
  /** Where a before-matching target was found (display only). */
  hit: z.unknown().optional(),
});

export const DrillSandboxSchema = z.strictObject({
  baseDir: z.string().min(1).max(1000),
  socket: z.string().min(1).max(1000),
  pid: z.number().int(),
  /** Absent only from sandboxes provisioned before drills followed the backup's product: those were all MariaDB. */
  product: ProductSchema.default('mariadb'),
});

export const TableVerificationSchema = z.strictObject({ table: z.string().max(64), rows: z.number().int().nonnegative(), checksum: z.string().max(40) });

export const CapturedTriggerSchema = z.strictObject({
  table: identifier,
  name: z.string().min(1).max(64),
  statement: z.string().max(1_000_000),
  sqlMode: z.string().max(1000),
  characterSetClient: z.string().max(64),
  collationConnection: z.string().max(64),
});

export const ManifestDraftSchema = ManifestSchema.omit({ status: true, verifiedAt: true, encryption: true }).strict();

export const ArchiveRunSpecSchema = z.strictObject({
  job: ArchiveJobSchema,
  asOf: z.number().int().positive(),
  key: identifier,
  columns: z.array(identifier).min(1),
  keyMin: z.string().max(200).nullable(),
  keyMax: z.string().max(200).nullable(),
  timeZone: z.string().regex(/^[+-]\d{2}:\d{2}$/).nullable(),
});

export const Checksum = checksum;
export const BackupType = z.enum(BACKUP_TYPES);
export const ApprovalActionSchema = z.enum(APPROVAL_ACTIONS);
export { BackupIdSchema, ArtifactSchema };
