/**
 * The one source of truth for dbops configuration (one YAML file). Every error names
 * the field path and what was expected (see formatConfigError).
 */
import { z } from 'zod';
import { CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE, KEY_ID_PATTERN, SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE } from '../domain/identifiers';
import { CompressionSchema } from '../domain/manifest';
import { durationSchema, durationSeconds } from '../domain/duration';

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
import { ArchiveJobSchema, parseDestination } from '../domain/archive';
import { RetentionConfigSchema } from '../domain/retention';
import { NotificationsConfigSchema } from '../domain/notifications';
import { APPROVAL_ACTIONS } from '../domain/approval';
import { checkPatterns, KILL_MODES, SessionPatternSchema } from '../domain/queryKiller';

/**
 * A secret is a reference, never a value: the config file, logs and workflow histories
 * only ever carry the reference; activities resolve it when they connect.
 */
export const SecretRefSchema = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
    z.strictObject({ file: z.string().min(1, 'a path to a file holding only the secret') }),
  ],
  {
    error: (issue) =>
      typeof issue.input === 'string'
        ? 'literal secrets are not accepted: write { env: VARIABLE } or { file: /path/to/secret }'
        : 'expected { env: VARIABLE } or { file: /path/to/secret }',
  },
);
export type SecretRef = z.infer<typeof SecretRefSchema>;

const hostPort = z.number().int().min(1).max(65535);

export const BinlogArchiveSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** A segment is published at most this long after its first transaction reached the worker. */
  flushAfter: durationSchema().refine((d) => durationSeconds(d) >= 1 && durationSeconds(d) <= 3600, 'between 1s and 1h').default('30s'),
  /** ... or once this many bytes are waiting, whichever comes first. */
  flushMiB: z.number().int().min(1).max(1024).default(16),
  /** The replica server id the stream connects with; must differ from every replica's. Default: derived from the cluster name (4000000000 and up). */
  connectionServerId: z.number().int().min(1).max(4294967295).optional(),
  /** How long one activity run streams before the workflow starts the next (each run re-reads at most the file it resumes in). */
  runFor: durationSchema().refine((d) => durationSeconds(d) >= 10 && durationSeconds(d) <= 4 * 3600, 'between 10s and 4h').default('1h'),
  /** Age of the newest archived transaction that raises a warning, and the critical one (RPO). */
  rpoTarget: durationSchema().default('60s'),
  rpoCritical: durationSchema().default('10m'),
});
export type BinlogArchiveConfig = z.infer<typeof BinlogArchiveSchema>;

/**
 * How a full backup reads the data. `dump`: one mysqldump / mariadb-dump stream, one
 * artifact. `parallel`: `threads` sessions share one snapshot and write each table in
 * primary-key chunks of about `chunkRows` rows, restored by as many sessions in parallel.
 * `physical`: the server's files (mariadb-backup; MySQL's clone plugin), restored by
 * starting a server on them; the worker must run on the database host.
 */
export const FULL_ENGINES = ['dump', 'parallel', 'physical'] as const;
export const FullBackupSchema = z.strictObject({
  engine: z.enum(FULL_ENGINES).default('dump'),
  threads: z.number().int().min(1).max(64).default(2),
  chunkRows: z.number().int().min(1000).max(100_000_000).default(500_000),
  /** Raw MiB per second all sessions of a backup may read together (default: no limit). */
  maxMiBPerSecond: z.number().positive().max(100_000).optional(),
});
export type FullBackupConfig = z.infer<typeof FullBackupSchema>;

/** Loading a chunked full backup: sessions in parallel, and a rate limit. */
export const RestoreLoadSchema = z.strictObject({
  threads: z.number().int().min(1).max(64).default(2),
  /** Raw MiB per second all sessions of a load may write together (default: no limit). */
  maxMiBPerSecond: z.number().positive().max(100_000).optional(),
});
export type RestoreLoadConfig = z.infer<typeof RestoreLoadSchema>;

/**
 * The slow-query killer (pt-kill's job as a scheduled workflow): statements running longer
 * than `busyTime` that match `match` and no `ignore` entry are stopped, the longest first,
 * at most `maxPerRun` per run. Patterns are case-insensitive regular expressions over the
 * processlist's user, host (without the port), db, command and info. Replication, the
 * server's own threads and dbops's accounts are never touched; DDL only with killDdl.
 */
export const QueryKillerSchema = z
  .strictObject({
    busyTime: durationSchema().default('60s'),
    /** How often the schedule runs it (`dbops schedules apply`). */
    every: durationSchema().default('1m'),
    match: SessionPatternSchema.default({ command: '^Query$' }),
    ignore: z.array(SessionPatternSchema).max(100).default([]),
    killDdl: z.boolean().default(false),
    maxPerRun: z.number().int().min(1).max(1000).default(10),
    /** query: KILL QUERY (the session stays); connection: KILL (the session is closed). */
    mode: z.enum(KILL_MODES).default('query'),
    /** Record what would be killed, kill nothing. */
    dryRun: z.boolean().default(false),
  })
  .superRefine((k, ctx) => {
    checkPatterns(k.match, ctx, ['match']);
    k.ignore.forEach((p, i) => checkPatterns(p, ctx, ['ignore', i]));
  });
export type QueryKillerConfig = z.infer<typeof QueryKillerSchema>;

/**
 * Index changes (`dbops schema change`): the checks before, the limits while the server
 * builds the index, and how long the run stays open for a rollback afterwards.
 */
export const SchemaChangeSchema = z.strictObject({
  /** Free disk that must remain on the server's datadir besides the table's own size. */
  diskHeadroomGiB: z.number().min(0).max(100_000).default(10),
  /** A transaction open longer than this holds the change back (it would hold its metadata lock). */
  longTransaction: durationSchema().default('60s'),
  /** How long the change waits for the table's metadata lock per try (lock_wait_timeout), and how many tries. */
  lockWait: durationSchema().refine((d) => durationSeconds(d) >= 1 && durationSeconds(d) <= 3600, 'between 1s and 1h').default('5s'),
  lockTries: z.number().int().min(1).max(1000).default(20),
  /** The longest the build may run (the server stops it there). */
  maxDuration: durationSchema().default('12h'),
  /** How long the change waits for a quiet moment (under pauseAt, no blockers) before giving up. */
  maxStartWait: durationSchema().default('30m'),
  /** How often the server is sampled while the change waits and runs. */
  sampleEvery: durationSchema().refine((d) => durationSeconds(d) >= 0.2 && durationSeconds(d) <= 60, 'between 200ms and 1m').default('2s'),
  /** The build does not start while the server is above these. */
  pauseAt: z.strictObject({ threadsRunning: z.number().int().min(1).default(32), replicaLag: durationSchema().default('60s') }).default({ threadsRunning: 32, replicaLag: '60s' }),
  /** The build is stopped (the server discards it) when above these for abortAfter samples in a row. */
  abortAt: z
    .strictObject({ threadsRunning: z.number().int().min(1).default(128), replicaLag: durationSchema().default('300s'), mdlWaiters: z.number().int().min(1).default(20) })
    .default({ threadsRunning: 128, replicaLag: '300s', mdlWaiters: 20 }),
  abortAfter: z.number().int().min(1).max(1000).default(3),
  /** Replicas (cluster names) whose lag is watched. */
  replicas: z.array(z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE)).max(32).default([]),
  /** After a verified change, the run stays open this long for `dbops schema rollback` (0s: it ends at once). */
  watchFor: durationSchema().default('15m'),
});
export type SchemaChangeConfig = z.infer<typeof SchemaChangeSchema>;

/** How the worker reaches a server: a cluster, or a server an instance is restored onto. */
const serverFields = {
  name: z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE),
  host: z.string().min(1).optional(),
  port: hostPort.default(3306),
  socket: z.string().min(1).optional(),
  user: z.string().min(1).max(80),
  password: SecretRefSchema.optional(),
};

const ToolsSchema = z.strictObject({
  dump: z.string().min(1).optional(),
  client: z.string().min(1).optional(),
  binlog: z.string().min(1).optional(),
  /** MariaDB's physical backup tool (default mariadb-backup on PATH). */
  physical: z.string().min(1).optional(),
});

export const ClusterSchema = z
  .strictObject({
    ...serverFields,
    /**
     * Restores write (CREATE, INSERT, DROP of their own targets, RENAME for a swap): give
     * them their own account so the backup account stays read-only. Default: user/password.
     */
    restoreUser: z.string().min(1).max(80).optional(),
    restorePassword: SecretRefSchema.optional(),
    /**
     * Operations jobs (the slow-query killer) connect as this account: it needs PROCESS and
     * CONNECTION ADMIN (MariaDB) / CONNECTION_ADMIN (MySQL). Default: the restore account.
     */
    opsUser: z.string().min(1).max(80).optional(),
    opsPassword: SecretRefSchema.optional(),
    /** Who may approve which risky action on this cluster, e.g. { restore-swap: [alice, bob], "*": [oncall] }. */
    approvers: z
      .record(z.string(), z.array(z.string().min(1)).min(1))
      .superRefine((approvers, ctx) => {
        const known: readonly string[] = [...APPROVAL_ACTIONS, '*'];
        for (const action of Object.keys(approvers)) {
          // A typo would silently fall back to "*": refuse it instead.
          if (!known.includes(action)) ctx.addIssue({ code: 'custom', path: [action], message: `not an approval action; known: ${known.join(', ')}` });
        }
      })
      .default({}),
    /** Actions whose requester may approve their own run (default none: four eyes). */
    allowSelfApproval: z.array(z.enum(APPROVAL_ACTIONS)).default([]),
    /** Default: every user database the account can see, at backup time. */
    databases: z.array(z.string().regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE)).min(1).optional(),
    /**
     * The longest any statement dbops runs on this server may take (MariaDB max_statement_time
     * for every statement, MySQL max_execution_time for reads; lock waits are bounded apart).
     */
    statementTimeout: durationSchema().default('1h'),
    /**
     * How long a MySQL full backup may hold writes to the tables it dumps while it takes its
     * snapshot (a moment normally; the wait for a long-open write transaction is cut off
     * here and the backup fails naming it). MariaDB's dump takes no lock.
     */
    dumpLockWait: durationSchema().default('10s'),
    /** A backup of a replica is refused while it lags its source by more than this (or does not replicate). */
    replicaMaxLag: durationSchema().default('5m'),
    /** Set only to override auto-detection (recorded in every manifest). */
    product: z.enum(['mariadb', 'mysql']).optional(),
    /** Continuous binlog archiving (the workflow binlog-archive/<cluster>, started by `dbops schedules apply`). */
    binlogArchive: BinlogArchiveSchema.default(BinlogArchiveSchema.parse({})),
    fullBackup: FullBackupSchema.default(FullBackupSchema.parse({})),
    restoreLoad: RestoreLoadSchema.default(RestoreLoadSchema.parse({})),
    /** The slow-query killer; absent: no killer for this cluster. */
    queryKiller: QueryKillerSchema.optional(),
    schemaChange: SchemaChangeSchema.default(SchemaChangeSchema.parse({})),
    /** Client tools for this cluster (default: MariaDB's, found on PATH). */
    tools: ToolsSchema.default({}),
  })
  .refine((c) => c.host !== undefined || c.socket !== undefined, {
    message: 'a cluster needs host (with port) or socket',
    path: ['host'],
  })
  .refine((c) => !(c.host !== undefined && c.socket !== undefined), {
    message: 'give host (with port) or socket, not both: which one the tools use would be a guess',
    path: ['socket'],
  });
export type ClusterConfig = z.infer<typeof ClusterSchema>;

const LEVELS = { zstd: 19, gzip: 9 } as const;

/** An object-store prefix: '/'-separated segments of safe characters, no leading or trailing '/'. */
const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Any S3-compatible object store (AWS S3, Ceph RGW, SeaweedFS, S3Proxy, ...). */
export const S3RepositorySchema = z.strictObject({
  /** The service URL; omit for AWS S3 itself (the region then picks the endpoint). */
  endpoint: z
    .string()
    .regex(/^https?:\/\/[^\s/?#@]+(:\d+)?\/?$/, 'a URL like https://s3.example.com or http://127.0.0.1:8333 (scheme, host, optional port; no path, no credentials)')
    .optional(),
  region: z.string().regex(/^[a-z0-9-]{1,40}$/, 'a region name like us-east-1').default('us-east-1'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'a bucket name: 3 to 63 lower-case letters, digits, "." or "-"'),
  /** Everything dbops stores goes under this prefix ("" for the whole bucket). */
  prefix: z
    .string()
    .refine((p) => p === '' || (PREFIX_PATTERN.test(p) && !p.split('/').some((s) => s === '..' || s === '.')), 'a prefix like backups/prod: segments of letters, digits, ".", "-", "_", no leading or trailing "/"')
    .default(''),
  /** Path-style addressing (http://host/bucket/key): most self-hosted services need it. */
  pathStyle: z.boolean().default(false),
  accessKeyId: SecretRefSchema,
  secretAccessKey: SecretRefSchema,
});
export type S3RepositoryConfig = z.infer<typeof S3RepositorySchema>;

/** Client-side encryption: every object is sealed with `current`; older keys stay to read older backups. */
export const EncryptionSchema = z
  .strictObject({
    current: z.string().regex(KEY_ID_PATTERN, 'a key id: letters, digits, ".", "-", "_" (up to 64)'),
    /** key id -> a reference to 32 random bytes (hex or base64; openssl rand -base64 32). */
    keys: z.record(z.string().regex(KEY_ID_PATTERN, 'a key id: letters, digits, ".", "-", "_" (up to 64)'), SecretRefSchema),
  })
  .refine((e) => Object.hasOwn(e.keys, e.current), { message: 'current names no key in keys', path: ['current'] });
export type EncryptionConfig = z.infer<typeof EncryptionSchema>;

export const RepositorySchema = z
  .strictObject({
    /** A local (or mounted) folder. Give path or s3. */
    path: z.string().min(1).optional(),
    /** An S3-compatible bucket. Give path or s3. */
    s3: S3RepositorySchema.optional(),
    /** Seal every stored object (see README, "Encryption"). Strongly advised with s3. */
    encryption: EncryptionSchema.optional(),
    compression: CompressionSchema.default('zstd'),
    /** zstd 1..19 (default 3) or gzip 1..9 (default 6). */
    compressionLevel: z.number().int().min(1).max(19).optional(),
    /** Binary logs compress almost as well at zstd 1 and twice as fast (default 1; gzip 1). */
    binlogCompressionLevel: z.number().int().min(1).max(19).optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.path === undefined) === (r.s3 === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['path'], message: r.path === undefined ? 'give path (a local folder) or s3 (a bucket)' : 'give path or s3, not both' });
    }
    for (const field of ['compressionLevel', 'binlogCompressionLevel'] as const) {
      const level = r[field];
      if (level === undefined) continue;
      if (r.compression === 'none') ctx.addIssue({ code: 'custom', path: [field], message: 'compression is none: remove the level' });
      else if (level > LEVELS[r.compression]) ctx.addIssue({ code: 'custom', path: [field], message: `${r.compression} levels go from 1 to ${LEVELS[r.compression]}` });
    }
  });
export type RepositoryConfig = z.infer<typeof RepositorySchema>;

const REPO_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/**
 * A further repository every backup is copied to after it is published (an off-site
 * bucket next to a fast local folder), with its own retention. Backups are restored from
 * the first repository that holds them: the primary, then the copies in this order.
 */
export const CopyRepositorySchema = z
  .strictObject({
    name: z.string().regex(REPO_NAME, 'a short name: lower-case letters, digits, "-" (e.g. offsite)').refine((n) => n !== 'primary', '"primary" names the repository itself'),
    path: z.string().min(1).optional(),
    s3: S3RepositorySchema.optional(),
    /** Default: the primary's encryption (the same keys). */
    encryption: EncryptionSchema.optional(),
    /** Default: the top-level retention. */
    retention: RetentionConfigSchema.optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.path === undefined) === (r.s3 === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['path'], message: r.path === undefined ? 'give path (a local folder) or s3 (a bucket)' : 'give path or s3, not both' });
    }
  });
export type CopyRepositoryConfig = z.infer<typeof CopyRepositorySchema>;

/** Where the repository is, for people: the folder, or s3://bucket/prefix. */
export function describeRepository(r: Pick<RepositoryConfig, 'path' | 's3' | 'encryption'>): string {
  const where = r.s3 ? `s3://${r.s3.bucket}/${r.s3.prefix}` : (r.path ?? '?');
  return r.encryption ? `${where} (encrypted, key ${r.encryption.current})` : where;
}

/**
 * A server dbops may restore a whole instance onto (`dbops restore instance --onto NAME`):
 * a standby host for when the primary is lost. It must be empty, or hold only databases a
 * dbops restore put there; the account needs to create and drop databases.
 */
export const RestoreTargetServerSchema = z
  .strictObject({
    ...serverFields,
    /** Client tools for this server (default: the source cluster's). */
    tools: ToolsSchema.optional(),
  })
  .refine((c) => (c.host !== undefined) !== (c.socket !== undefined), { message: 'give host (with port) or socket, one of them', path: ['host'] });
export type RestoreTargetServer = z.infer<typeof RestoreTargetServerSchema>;

export const TemporalSchema = z.strictObject({
  address: z.string().min(1).default('localhost:7233'),
  namespace: z.string().min(1).default('default'),
  taskQueue: z.string().min(1).default('dbops'),
});

const duration = durationSchema();

/** Approval gates: escalate while nobody decides, then take the safe outcome (abort). */
export const ApprovalSchema = z
  .strictObject({
    timeout: duration.default('60m').refine((d) => durationSeconds(d) >= 1, 'more than 0s: a person needs time to answer (default 60m)'),
    escalateAfter: z.array(duration.refine((d) => durationSeconds(d) >= 1, 'more than 0s')).default(['15m', '30m']),
  })
  .superRefine((a, ctx) => {
    a.escalateAfter.forEach((step, i) => {
      if (durationSeconds(step) >= durationSeconds(a.timeout)) ctx.addIssue({ code: 'custom', path: ['escalateAfter', i], message: `escalates after the deadline (timeout ${a.timeout})` });
    });
  });

export const SCHEDULED_ACTIONS = ['backup-full', 'backup-incremental', 'backup-differential', 'drill', 'drill-full', 'archive', 'retention', 'repo-verify', 'query-killer'] as const;

/** One routine job: a cron expression (in schedules.timezone) or a fixed interval. */
export const ScheduleEntrySchema = z
  .strictObject({
    cluster: z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE),
    action: z.enum(SCHEDULED_ACTIONS),
    cron: z.string().regex(/^\S+( \S+){4}$/, 'a 5-field cron expression such as "0 2 * * *"').optional(),
    every: duration.optional(),
    /** For action archive: the name of a job in archive.jobs. */
    job: z.string().min(1).optional(),
  })
  .refine((e) => (e.cron === undefined) !== (e.every === undefined), { message: 'give exactly one of cron or every', path: ['cron'] })
  .refine((e) => (e.action === 'archive') === (e.job !== undefined), { message: 'action archive needs job: NAME (a job in archive.jobs); other actions take no job', path: ['job'] });

export const SchedulesSchema = z.strictObject({
  /** IANA zone for cron expressions (default UTC). */
  timezone: z
    .string()
    .min(1)
    .default('UTC')
    .refine(isTimeZone, 'an IANA time zone such as UTC, Europe/Zurich or Asia/Shanghai'),
  /** How far back missed runs are still taken after an outage (set explicitly; default 10m). */
  catchupWindow: duration.default('10m'),
  /** Clusters that get the default schedules: full daily 02:00, incremental every 4 hours, differential 10:00 and 16:00. */
  defaultsFor: z.array(z.string().regex(CLUSTER_NAME_PATTERN, CLUSTER_NAME_RULE)).default([]),
  entries: z.array(ScheduleEntrySchema).default([]),
});
export type SchedulesConfig = z.infer<typeof SchedulesSchema>;

/** DR drill targets (defaults: RTO under 4 hours, RPO under 10 minutes). */
const ReadOnlyQuery = z.strictObject({
  database: z.string().regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE),
  sql: z.string().regex(/^\s*(SELECT|WITH|SHOW)\b/i, 'a read-only query (SELECT, WITH or SHOW)'),
  minRows: z.number().int().nonnegative().default(1),
});

export const DrillsSchema = z.strictObject({
  rtoTarget: duration.default('4h'),
  rpoTarget: duration.default('10m'),
  /** Read-only queries run on the restored server; each must return at least minRows rows. */
  sampleQueries: z.array(ReadOnlyQuery).default([]),
  /** The quarterly full drill's failover rehearsal: checks run as the new primary, after approval (action drill-failover). */
  failoverChecks: z.array(ReadOnlyQuery).default([]),
});

/** Batched history archiving: named jobs, run from schedules or `dbops archive run --job NAME`. */
export const ArchiveSchema = z.strictObject({
  jobs: z.array(ArchiveJobSchema).default([]),
});

/** The worker's Prometheus endpoint: GET http://<listen>/metrics (dbops metrics and the Temporal SDK's). */
export const MetricsSchema = z.strictObject({
  listen: z.string().regex(/^[^:\s]+:\d{1,5}$/, 'host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464'),
  /** Read each cluster's connections and replication state at every scrape (one short session each). */
  serverHealth: z.boolean().default(true),
});

export const LoggingSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

export const ConfigSchema = z
  .strictObject({
    temporal: TemporalSchema.default({ address: 'localhost:7233', namespace: 'default', taskQueue: 'dbops' }),
    repository: RepositorySchema,
    clusters: z.array(ClusterSchema).min(1, 'configure at least one cluster'),
    logging: LoggingSchema.default({ level: 'info' }),
    approval: ApprovalSchema.default({ timeout: '60m', escalateAfter: ['15m', '30m'] }),
    schedules: SchedulesSchema.default({ timezone: 'UTC', catchupWindow: '10m', defaultsFor: [], entries: [] }),
    drills: DrillsSchema.default({ rtoTarget: '4h', rpoTarget: '10m', sampleQueries: [], failoverChecks: [] }),
    archive: ArchiveSchema.default({ jobs: [] }),
    /** Per-type days + minimum counts, the point-in-time window, storage limits. */
    retention: RetentionConfigSchema.default(RetentionConfigSchema.parse({})),
    /** Webhooks (generic JSON, Slack) with severity and cooldown; alerts are also log lines. */
    notifications: NotificationsConfigSchema.default({ webhooks: [], cooldown: '15m' }),
    metrics: MetricsSchema.optional(),
    /** Further repositories each backup is copied to (see CopyRepositorySchema). */
    copies: z.array(CopyRepositorySchema).max(8).default([]),
    /** Servers a whole instance may be restored onto (see RestoreTargetServerSchema). */
    restoreTargets: z.array(RestoreTargetServerSchema).max(32).default([]),
    /**
     * Where `dbops restore physical` puts the datadirs it restores from physical fulls (one
     * folder per restore, named by the request), on the worker's host.
     */
    physicalRestores: z
      .strictObject({ dir: z.string().min(1).startsWith('/', 'an absolute path').max(500) })
      .optional(),
  })
  .superRefine((config, ctx) => {
    const repoNames = new Set<string>();
    config.copies.forEach((copy, index) => {
      if (repoNames.has(copy.name)) ctx.addIssue({ code: 'custom', path: ['copies', index, 'name'], message: `two copies named "${copy.name}"` });
      repoNames.add(copy.name);
      const same = copy.path !== undefined ? copy.path === config.repository.path : copy.s3 !== undefined && config.repository.s3 !== undefined && copy.s3.bucket === config.repository.s3.bucket && copy.s3.prefix === config.repository.s3.prefix && copy.s3.endpoint === config.repository.s3.endpoint;
      if (same) ctx.addIssue({ code: 'custom', path: ['copies', index], message: 'a copy must be a different place than the repository itself' });
    });
    const names = new Set(config.clusters.map((c) => c.name));
    const targetNames = new Set<string>();
    config.restoreTargets.forEach((t, index) => {
      if (targetNames.has(t.name)) ctx.addIssue({ code: 'custom', path: ['restoreTargets', index, 'name'], message: `two restore targets named "${t.name}"` });
      targetNames.add(t.name);
    });
    config.schedules.entries.forEach((entry, index) => {
      if (!names.has(entry.cluster)) {
        ctx.addIssue({ code: 'custom', path: ['schedules', 'entries', index, 'cluster'], message: `unknown cluster "${entry.cluster}"` });
      }
    });
    config.schedules.defaultsFor.forEach((cluster, index) => {
      if (!names.has(cluster)) ctx.addIssue({ code: 'custom', path: ['schedules', 'defaultsFor', index], message: `unknown cluster "${cluster}"` });
    });
    const jobNames = new Map<string, number>();
    config.archive.jobs.forEach((job, index) => {
      const at = (...path: PropertyKey[]) => ['archive', 'jobs', index, ...path];
      if (job.name === undefined) ctx.addIssue({ code: 'custom', path: at('name'), message: 'a configured job needs a name (schedules and `dbops archive run --job NAME` refer to it)' });
      else if (jobNames.has(job.name)) ctx.addIssue({ code: 'custom', path: at('name'), message: `duplicate job name "${job.name}" (also archive.jobs[${jobNames.get(job.name)}])` });
      else jobNames.set(job.name, index);
      if (!names.has(job.cluster)) ctx.addIssue({ code: 'custom', path: at('cluster'), message: `unknown cluster "${job.cluster}"` });
      const dest = parseDestination(job.to, job);
      if (dest && !names.has(dest.cluster)) ctx.addIssue({ code: 'custom', path: at('to'), message: `unknown cluster "${dest.cluster}"` });
      job.throttle.replicas.forEach((r, i) => {
        if (!names.has(r)) ctx.addIssue({ code: 'custom', path: at('throttle', 'replicas', i), message: `unknown cluster "${r}"` });
      });
    });
    config.clusters.forEach((cluster, index) => {
      cluster.schemaChange.replicas.forEach((r, i) => {
        if (!names.has(r) || r === cluster.name) ctx.addIssue({ code: 'custom', path: ['clusters', index, 'schemaChange', 'replicas', i], message: r === cluster.name ? 'a cluster is not its own replica' : `unknown cluster "${r}"` });
      });
    });
    config.schedules.entries.forEach((entry, index) => {
      if (entry.job !== undefined && !jobNames.has(entry.job)) {
        ctx.addIssue({ code: 'custom', path: ['schedules', 'entries', index, 'job'], message: `unknown archive job "${entry.job}" (archive.jobs[].name)` });
      }
    });
    const seen = new Map<string, number>();
    config.clusters.forEach((cluster, index) => {
      const first = seen.get(cluster.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', index, 'name'],
          message: `duplicate cluster name "${cluster.name}" (also clusters[${first}])`,
        });
      } else {
        seen.set(cluster.name, index);
      }
    });
  });
export type DbopsConfig = z.infer<typeof ConfigSchema>;

/** "clusters[0].password: expected { env: VARIABLE } ..." */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

export function formatConfigIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatIssuePath(issue.path)}: ${issue.message}`);
}
