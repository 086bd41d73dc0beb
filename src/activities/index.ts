/**
 * The activities a worker registers: one family per operation, each built from the same
 * dependencies (config, logger, repository, notifier, metrics, Temporal access). Workflows
 * pass names (cluster, backup id); credentials and paths are resolved in the activities,
 * at run time. Each activity touches one resource and is safe to retry. The names are the
 * contract with recorded workflow histories: they do not change.
 */
import { createApprovalActivities } from './approval';
import { createArchiveActivities } from './archive';
import { createBackupActivities } from './backup';
import { createBinlogArchiveActivities } from './binlogArchive';
import { createCopyActivities } from './copy';
import type { ActivityDeps } from './deps';
import { createDrillActivities } from './drill';
import { createInstanceRestoreActivities } from './instanceRestore';
import { createLockActivities } from './lock';
import { createNotifyActivities } from './notify';
import { createPhysicalRestoreActivities } from './physicalRestore';
import { createRepoVerifyActivities } from './repoVerify';
import { createRestoreActivities } from './restore';
import { createQueryKillerActivities } from './queryKiller';
import { createRetentionActivities } from './retention';
import { createSchemaChangeActivities } from './schemaChange';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createLockActivities(deps),
    ...createBackupActivities(deps),
    ...createCopyActivities(deps),
    ...createBinlogArchiveActivities(deps),
    ...createRestoreActivities(deps),
    ...createDrillActivities(deps),
    ...createInstanceRestoreActivities(deps),
    ...createPhysicalRestoreActivities(deps),
    ...createArchiveActivities(deps),
    ...createRetentionActivities(deps),
    ...createRepoVerifyActivities(deps),
    ...createQueryKillerActivities(deps),
    ...createSchemaChangeActivities(deps),
    ...createApprovalActivities(deps),
    ...createNotifyActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export { buildActivityDeps, type ActivityDeps } from './deps';
export type { ApprovalActivities } from './approval';
export type { ArchiveActivities } from './archive';
export type { BackupActivities } from './backup';
export type { BinlogArchiveActivities } from './binlogArchive';
export type { CopyActivities } from './copy';
export type { DrillActivities } from './drill';
export type { InstanceRestoreActivities } from './instanceRestore';
export type { LockActivities } from './lock';
export type { NotifyActivities } from './notify';
export type { PhysicalRestoreActivities } from './physicalRestore';
export type { QueryKillerActivities } from './queryKiller';
export type { RepoVerifyActivities } from './repoVerify';
export type { RestoreActivities } from './restore';
export type { RetentionActivities } from './retention';
export type { SchemaChangeActivities } from './schemaChange';
