import type { DevServer } from '../../src/dev/temporalServer';
import type { MariadbSandbox } from '../../src/mysql/servers/mariadb';

export const HARNESS_ENV = 'DBOPS_TEST_HARNESS';

/** What globalSetup shares with the test files (through a JSON file named in the env). */
export interface HarnessState {
  baseDir: string;
  temporalAddress: string;
  /** The dev server's Web UI (the browser test drives it). */
  uiUrl: string;
  namespace: string;
  workflowBundlePath: string;
  mariadb: { host: string; port: number; socket: string; datadir: string; user: string; passwordFile: string; restoreUser: string; restorePasswordFile: string };
}

/** Live objects only globalTeardown needs. */
export interface HarnessHandles {
  baseDir: string;
  mariadb?: MariadbSandbox;
  temporal?: DevServer;
}
