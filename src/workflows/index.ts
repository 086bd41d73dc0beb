/** Every workflow the dbops worker runs (the bundle entry point). */
export { fullBackupWorkflow } from './backup';
export type { FullBackupInput } from './backup';
