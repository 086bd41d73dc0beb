import type { S3Server } from '../../src/dev/s3Server';
import type { DevServer } from '../../src/dev/temporalServer';
import type { Product } from '../../src/domain/manifest';
import type { LocalServer } from '../../src/mysql/servers/local';

export const HARNESS_ENV = 'DBOPS_TEST_HARNESS';

/** What globalSetup shares with the test files (through a JSON file named in the env). */
export interface HarnessState {
  baseDir: string;
  temporalAddress: string;
  /** The dev server's Web UI (the browser test drives it). */
  uiUrl: string;
  namespace: string;
  workflowBundlePath: string;
  mariadb: ServerInfo;
  /** Absent where MySQL is not installed (not root) or DBOPS_SKIP_MYSQL=1. */
  mysql?: ServerInfo;
  /** The S3-compatible server; absent where scripts/setup.sh could not install it (no Java 17). */
  s3?: S3Info;
}

/** The shared S3-compatible server: where it listens, its bucket, and the credentials in 0600 files. */
export interface S3Info {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyIdFile: string;
  secretAccessKeyFile: string;
  /** Where the server keeps the objects (one folder per bucket). */
  dataDir: string;
}

/** One shared database server: where it listens, and the accounts dbops uses on it. */
export interface ServerInfo {
  product: Product;
  host: string;
  port: number;
  socket: string;
  datadir: string;
  user: string;
  passwordFile: string;
  restoreUser: string;
  restorePasswordFile: string;
  /** The product's own client tools, when they are not the MariaDB ones on PATH. */
  tools?: { dump: string; client: string; binlog: string };
}

/** Live objects only globalTeardown needs. */
export interface HarnessHandles {
  baseDir: string;
  mariadb?: LocalServer;
  mysql?: LocalServer;
  s3?: S3Server;
  temporal?: DevServer;
}
