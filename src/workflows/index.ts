/** Every workflow the dbops worker runs (the bundle entry point). */
export {
  fullBackupWorkflow,
  emergencyBackupWorkflow,
  schemaBackupWorkflow,
  incrementalBackupWorkflow,
  differentialBackupWorkflow,
} from './backup';
export type { BackupInput } from './backup';
export { pointInTimeRestoreWorkflow, restorePlanWorkflow, tableRestoreWorkflow } from './restore';
export type { PitrInput, RestoreInput, TableRestoreInput } from './restore';
export { disasterRecoveryDrillWorkflow } from './drill';
export type { DrillInput, DrillResult } from './drill';
export { archiveWorkflow } from './archive';
export type { ArchiveInput, ArchiveResult, ArchiveStatus } from './archive';
export { retentionWorkflow } from './retention';
export { copyBackupsWorkflow } from './copy';
export type { CopyInput, CopyResult } from './copy';
export type { RetentionInput, RetentionResult } from './retention';
export { repoVerifyWorkflow } from './repoVerify';
export type { RepoVerifyInput, RepoVerifyResult } from './repoVerify';
export { binlogArchiveWorkflow } from './binlogArchive';
export type { BinlogArchiveInput, BinlogArchiveState } from './binlogArchive';
export { instanceRestoreWorkflow } from './instanceRestore';
export type { InstanceRestoreInput, InstanceRestoreResult } from './instanceRestore';
export { physicalRestoreWorkflow } from './physicalRestore';
export type { PhysicalRestoreInput, PhysicalRestoreResult } from './physicalRestore';
export { queryKillerWorkflow } from './queryKiller';
export { schemaChangeWorkflow } from './schemaChange';
export type { SchemaChangeInput, SchemaChangeResult } from './schemaChange';
export type { QueryKillerInput, QueryKillerResult } from './queryKiller';
