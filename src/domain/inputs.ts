/**
 * What a workflow accepts from whoever starts or signals it. Anyone with access to the
 * namespace can start a workflow with any arguments, so every input, signal and Update
 * payload is parsed here (strict: unknown fields are refused) before the workflow acts on
 * it. Inputs name things (a cluster, a database, a target); they never carry SQL, approver
 * lists or settings the worker must decide for itself. Pure: the workflows, the CLI and
 * the tests share these schemas.
 */
import { z } from 'zod';
import { parseGtidTarget } from './gtid';
import { ArchiveJobSchema } from './archive';
import { durationSchema } from './duration';
import { CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE, SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE, SYSTEM_DATABASES } from './identifiers';
import { IndexChangeSchema, VerifyQueriesSchema, verifyQueryProblem } from './schemaChange';
import { patternProblem, TargetError, parseUtcTime } from './restoreTarget';

const clusterName = z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE);
const identifier = z.string().regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE);
/** A person or a system that asks or decides: printable, short. */
export const PersonSchema = z
  .string()
  .trim()
  .min(1, 'a name is required')
  .max(100, 'at most 100 characters')
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'printable characters only');
const note = (max: number) => z.string().max(max, `at most ${max} characters`).regex(/^[^\u0000-\u0008\u000b-\u001f\u007f]*$/, 'printable characters only');
const duration = durationSchema();

export const RestoreTargetSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('time'),
    at: z.string().superRefine((at, ctx) => {
      try {
        parseUtcTime(at, 'target');
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as TargetError).message });
      }
    }),
  }),
  z.strictObject({ kind: z.literal('position'), file: z.string().regex(/^[A-Za-z0-9_.-]{1,200}\.\d{1,10}$/, 'a binlog file name such as binlog.000042'), position: z.number().int().min(4) }),
  z.strictObject({
    kind: z.literal('gtid'),
    gtid: z
      .string()
      .max(4000)
      .refine((g) => {
        try {
          return parseGtidTarget(g).normalised === g;
        } catch {
          return false;
        }
      }, 'a GTID target: domain-server-sequence (MariaDB) or a normalised GTID set uuid:a-b[,…] (MySQL)'),
  }),
  z.strictObject({ kind: z.literal('latest') }),
  z.strictObject({
    kind: z.literal('beforeMatching'),
    pattern: z
      .string()
      .min(1)
      .max(500, 'at most 500 characters')
      .superRefine((pattern, ctx) => {
        const problem = patternProblem(pattern);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    after: z
      .string()
      .nullable()
      .superRefine((after, ctx) => {
        if (after === null) return;
        try {
          parseUtcTime(after, '--after');
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as TargetError).message });
        }
      }),
  }),
]);

export const BackupInputSchema = z.strictObject({
  cluster: clusterName,
  requestedBy: PersonSchema.optional(),
  reason: note(500).optional(),
  timeouts: z.strictObject({ transfer: duration.optional(), heartbeat: duration.optional() }).optional(),
  /** How this full is taken, for this run only (default: the cluster's fullBackup.engine). */
  engine: z.enum(['dump', 'parallel', 'physical']).optional(),
});

export const RestoreInputSchema = z.strictObject({
  cluster: clusterName,
  database: identifier,
  target: RestoreTargetSchema,
  requestedBy: PersonSchema.optional(),
});

export const PitrInputSchema = RestoreInputSchema.extend({
  into: identifier,
  /** How soon a load whose worker died is retried elsewhere (and resumes from its checkpoint); default 2 minutes. */
  timeouts: z.strictObject({ heartbeat: duration.optional() }).optional(),
}).refine((i) => i.into !== i.database, {
  message: 'must name a new database, not the live one',
  path: ['into'],
});

export const InstanceRestoreInputSchema = z.strictObject({
  cluster: clusterName,
  /** A server named under restoreTargets in the worker's config. */
  onto: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a restore target name from restoreTargets'),
  /** Default: every database of the newest full backup. */
  databases: z.array(identifier).min(1).max(500).refine((d) => new Set(d).size === d.length, 'a database is named twice').optional(),
  target: RestoreTargetSchema,
  requestedBy: PersonSchema.optional(),
  /** Plan and check the target, write nothing. */
  dryRun: z.boolean().optional(),
  /** Drop and restore again databases an earlier dbops restore put on the target (refused otherwise). */
  replace: z.boolean().optional(),
});

/** A physical full (and its chain) restored to a new datadir on the worker's host, for a new server. */
export const PhysicalRestoreInputSchema = z.strictObject({
  cluster: clusterName,
  target: RestoreTargetSchema,
  /** The folder under physicalRestores.dir: a name, not a path. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a folder name: lower-case letters, digits, "-" and "_"'),
  requestedBy: PersonSchema.optional(),
  /** Plan only, write nothing. */
  dryRun: z.boolean().optional(),
});

export const TableRestoreInputSchema = RestoreInputSchema.extend({
  tables: z
    .array(identifier)
    .min(1, 'name at least one table')
    .max(32, 'at most 32 tables per restore')
    .refine((t) => new Set(t).size === t.length, 'a table is named twice'),
  swap: z.boolean(),
});

export const DrillInputSchema = z.strictObject({
  cluster: clusterName,
  rtoTarget: duration.optional(),
  rpoTarget: duration.optional(),
  /** The quarterly profile: the failover rehearsal (its checks come from the worker's config). */
  full: z.boolean().optional(),
  requestedBy: PersonSchema.optional(),
});

/** A copy repository's name, as configured under copies[].name. */
export const RepoNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'a copy repository name (copies[].name)');

export const CopyInputSchema = z.strictObject({
  cluster: clusterName,
  repo: RepoNameSchema,
  /** Apply the copy's retention after catching up (default true). */
  retention: z.boolean().optional(),
});

export const RetentionInputSchema = z.strictObject({
  cluster: clusterName,
  /** A copy repository (copies[].name); default the primary. */
  repo: RepoNameSchema.optional(),
  dryRun: z.boolean().optional(),
  requestedBy: PersonSchema.optional(),
});

/** Verifying the repository: one cluster's backups, or (no cluster) those of every cluster the worker is configured with. */
export const BinlogArchiveInputSchema = z.strictObject({
  cluster: clusterName,
  requestedBy: PersonSchema.optional(),
  /** Carried across continue-as-new. */
  paused: z.boolean().optional(),
  pausedBy: PersonSchema.nullable().optional(),
});

/** pause / resume / stop of the binlog archive: who, and why (recorded in the history). */
export const ArchiveControlSchema = z.strictObject({ by: PersonSchema, reason: z.string().max(500).optional() });

export const RepoVerifyInputSchema = z.strictObject({
  cluster: clusterName.optional(),
  requestedBy: PersonSchema.optional(),
});

export const QueryKillerInputSchema = z.strictObject({
  cluster: clusterName,
  /** Record what would be killed, kill nothing (the cluster's queryKiller.dryRun forces it too). */
  dryRun: z.boolean().default(false),
  requestedBy: PersonSchema.optional(),
});

/**
 * One index change: the change as names (the CLI reads the operator's statement with the
 * lexer; the worker builds its own), and the verify queries, the one place a run carries
 * SQL text: plain SELECTs the worker only EXPLAINs, read-only.
 */
export const SchemaChangeInputSchema = z.strictObject({
  cluster: clusterName,
  database: identifier.refine((d) => !SYSTEM_DATABASES.includes(d.toLowerCase()), 'a system database is not changed by dbops'),
  change: IndexChangeSchema,
  verifyQueries: VerifyQueriesSchema.default([]),
  /** Plan and check, change nothing. */
  dryRun: z.boolean().default(false),
  requestedBy: PersonSchema.optional(),
}).superRefine((i, ctx) =>
  i.verifyQueries.forEach((q, n) => {
    const problem = verifyQueryProblem(q, i.database);
    if (problem) ctx.addIssue({ code: 'custom', path: ['verifyQueries', n], message: `verify query ${n + 1}: ${problem}` });
  }),
);

/** A rollback asked for while a verified change is watched: who, and why (required). */
export const RollbackRequestSchema = z.strictObject({ operator: PersonSchema, reason: note(500).refine((r) => r.trim().length > 0, 'a reason is required (--reason TEXT)') });

/** Who asked for a run: their name and the Temporal identity of the client that started it. */
export const RequesterSchema = z.strictObject({ name: PersonSchema, identity: z.string().max(300).nullable() });
export type Requester = z.infer<typeof RequesterSchema>;

export const ApprovalDecisionSchema = z.strictObject({
  decision: z.enum(['approved', 'rejected', 'expired']),
  by: z.string().nullable(),
  identity: z.string().nullable().optional(),
  at: z.string(),
  reason: z.string().nullable(),
});

const checksum = z.strictObject({ rows: z.number().int().nonnegative(), sum: z.string().regex(/^-?\d+$/), xor: z.string().regex(/^-?\d+$/) });

/**
 * What an archive run hands to the next run of the same workflow when it continues as new:
 * the plan-time measurements and the walk's position, never SQL (the worker derives every
 * statement from the job and the table again). Accepted only from a run that really
 * continued as new (the workflow checks workflowInfo().continuedFromExecutionRunId).
 */
export const ArchiveFactsSchema = z.strictObject({
  job: ArchiveJobSchema,
  dest: z.strictObject({ cluster: clusterName, database: identifier, table: identifier }),
  sameServer: z.boolean(),
  asOf: z.number().int().positive(),
  key: identifier,
  columns: z.array(identifier).min(1),
  keyMin: z.string().max(200).nullable(),
  keyMax: z.string().max(200).nullable(),
  planned: checksum,
  destBefore: checksum,
  destExists: z.boolean(),
  index: z.string().max(500),
  estimatedBatches: z.number().int().nonnegative(),
  timeZone: z.string().regex(/^[+-]\d{2}:\d{2}$/).nullable(),
  warnings: z.array(z.string().max(2000)).max(50),
});

export const ArchiveCarriedSchema = z.strictObject({
  facts: ArchiveFactsSchema,
  progress: z.strictObject({
    phase: z.enum(['plan', 'destination', 'approval', 'moving', 'paused', 'verify', 'done', 'cancelled', 'failed']),
    planned: z.number().int().nonnegative(),
    moved: z.number().int().nonnegative(),
    batches: z.number().int().nonnegative(),
    cursor: z.strictObject({ after: z.string().max(200).nullable() }),
    throttled: z.string().max(2000).nullable(),
    pausedBy: z.string().max(100).nullable(),
    runs: z.number().int().nonnegative(),
    startedAt: z.string(),
    updatedAt: z.string(),
  }),
  approval: ApprovalDecisionSchema.nullable(),
  requester: RequesterSchema,
  log: z.array(z.string().max(2000)).max(100),
});
export type ArchiveCarried = z.infer<typeof ArchiveCarriedSchema>;

export const ArchiveInputSchema = z.strictObject({
  job: ArchiveJobSchema,
  dryRun: z.boolean().optional(),
  /** `--yes`: the requester approves the delete phase when starting (checked by the worker's rules). */
  preApproved: z.strictObject({ by: PersonSchema, reason: note(500) }).nullable().optional(),
  requestedBy: PersonSchema.optional(),
  timeouts: z.strictObject({ heartbeat: duration.optional() }).optional(),
  carried: ArchiveCarriedSchema.optional(),
});

export const OperatorActionSchema = z.strictObject({ operator: PersonSchema, reason: note(500).optional() });
export type OperatorAction = z.infer<typeof OperatorActionSchema>;

export const DecisionInputSchema = z.strictObject({ operator: PersonSchema, reason: note(500).refine((r) => r.trim() !== '', 'a reason is required (--reason TEXT)') });
export const DecideUpdateSchema = DecisionInputSchema.extend({ decision: z.enum(['approve', 'reject']) });

/** The first problem of a payload, as "field: what is wrong" (for refusals the operator reads). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`)
    .join('; ');
}

export type ParseOutcome<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseInput<S extends z.ZodType>(schema: S, raw: unknown, what: string): ParseOutcome<z.infer<S>> {
  const parsed = schema.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, message: `${what}: ${describeIssues(parsed.error)}` };
}
