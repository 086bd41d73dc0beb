/**
 * Every failure type dbops raises, declared once and used by reference (a typo is a compile
 * error, not a failure that is silently retried). Those in NON_RETRYABLE_TYPES say what to
 * fix and stop the workflow; the others are retried.
 */
export const Failure = {
  /** Configuration: a field to fix. */
  Config: 'ConfigError',
  Auth: 'AuthError',
  Privilege: 'PrivilegeError',
  /** A workflow or activity input that does not parse, or names something that cannot be. */
  InvalidInput: 'InvalidInput',
  ArtifactCorrupt: 'ArtifactCorrupt',
  /** Another backup operation holds the cluster (retryable where a run should wait: emergency backups). */
  ClusterBusy: 'ClusterBusy',
  ChainGap: 'ChainGap',
  ReplayError: 'ReplayError',
  InvalidArchiveJob: 'InvalidArchiveJob',
  ThrottleAbort: 'ThrottleAbort',
  RetentionUnsafe: 'RetentionUnsafe',
  ArchiveCountMismatch: 'ArchiveCountMismatch',
  ArchiveVerificationFailed: 'ArchiveVerificationFailed',
  ApprovalRefused: 'ApprovalRefused',
  DrillFailed: 'DrillFailed',
  /** A dump without a binlog position: retried (a fresh dump). */
  DumpPositionMissing: 'DumpPositionMissing',
  /** mysqldump was slow to open its snapshot (a cold or busy host): the tables were let go; retried with a fresh dump. */
  DumpSlowStart: 'DumpSlowStart',
  /** A long-running query would stall the server's writes behind the dump's global read lock. */
  DumpBlocked: 'DumpBlocked',
  /** A resumed load found a session of the earlier attempt still loading a chunk: retried once it has ended. */
  LoadStillRunning: 'LoadStillRunning',
  Cancelled: 'Cancelled',
  /** A backup named by a run is no longer in the repository (deleted since the run planned). */
  BackupGone: 'BackupGone',
  /** The binlog archive cannot continue its timeline (purged, another server, went backwards): a new timeline starts. */
  BinlogArchiveGap: 'BinlogArchiveGap',
} as const;
export type FailureType = (typeof Failure)[keyof typeof Failure];

export const NON_RETRYABLE_TYPES: FailureType[] = [
  Failure.Config,
  Failure.Auth,
  Failure.Privilege,
  Failure.InvalidInput,
  Failure.ArtifactCorrupt,
  Failure.ClusterBusy,
  Failure.ChainGap,
  Failure.ReplayError,
  Failure.InvalidArchiveJob,
  Failure.ThrottleAbort,
  Failure.RetentionUnsafe,
  Failure.ArchiveCountMismatch,
  Failure.ApprovalRefused,
  Failure.DumpBlocked,
  Failure.BackupGone,
  Failure.BinlogArchiveGap,
];

/** The type of an ApplicationFailure, also when it is the cause of an ActivityFailure. */
export function failureType(error: unknown): string | null {
  let e: unknown = error;
  while (e instanceof Error) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** The innermost cause's message: the one that says what went wrong (activity failures wrap it). */
export function innermostMessage(error: unknown): string {
  let e: unknown = error;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(error);
}
