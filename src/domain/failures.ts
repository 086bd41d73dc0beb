/**
 * Failure types that no retry can fix: the activity says what to fix and the workflow
 * stops. One list for every workflow and activity, so they cannot drift apart.
 * (ClusterBusy is raised retryable where a run should wait: emergency backups.)
 */
export const NON_RETRYABLE_TYPES = [
  'ConfigError',
  'AuthError',
  'PrivilegeError',
  'InvalidInput',
  'ArtifactCorrupt',
  'ClusterBusy',
  'ChainGap',
  'ReplayError',
  'InvalidArchiveJob',
  'ThrottleAbort',
  'RetentionUnsafe',
  'ArchiveCountMismatch',
  'ApprovalRefused',
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
