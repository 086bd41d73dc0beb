/**
 * A private S3-compatible server (S3Proxy over a local folder), as the project installs it:
 * what the object-store driver is tested against, and the bucket of `dbops dev --s3`. It
 * listens on 127.0.0.1 only, with credentials made up for each start (or kept from the
 * previous start in the same folder, when asked). The secret is in a 0600 properties file
 * that the server reads and in a 0600 file for the client; never in a process's arguments
 * or environment. The objects stay in the folder: a server started again on it serves the
 * same bucket.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import { execa, stopperOf, type ResultPromise } from '../tools/execa';
import { createS3Client } from '../tools/s3Client';
import { childEnv, projectRoot as findProjectRoot } from '../tools/tools';
import { freePort, tail } from '../mysql/servers/local';

const projectRoot = findProjectRoot();

export const S3PROXY_VERSION = '4.1.0';

/** $DBOPS_S3PROXY_JAR, else the jar scripts/setup.sh installs in .tools/s3proxy. */
export function resolveS3ProxyJar(): string {
  const jar = process.env.DBOPS_S3PROXY_JAR || path.join(projectRoot, '.tools', 's3proxy', `s3proxy-${S3PROXY_VERSION}.jar`);
  if (!existsSync(jar)) {
    throw new Error(`S3Proxy not found at ${jar}: run \`bash scripts/setup.sh\` or set DBOPS_S3PROXY_JAR=/path/to/s3proxy.jar`);
  }
  return jar;
}

/** $DBOPS_JAVA, else the Java 17+ that scripts/setup.sh recorded, else `java` on PATH. */
export function resolveJava(): string {
  const candidates: string[] = [];
  if (process.env.DBOPS_JAVA) candidates.push(process.env.DBOPS_JAVA);
  const recorded = path.join(projectRoot, '.tools', 's3proxy', 'java-path');
  if (existsSync(recorded)) candidates.push(readFileSync(recorded, 'utf8').trim());
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir !== '') candidates.push(path.join(dir, 'java'));
  const found = candidates.find((c) => c !== '' && existsSync(c));
  if (!found) throw new Error('Java 17 or newer not found (S3Proxy needs it): run `bash scripts/setup.sh` or set DBOPS_JAVA=/path/to/java');
  return found;
}

/** Whether this machine can run the S3 server (setup installed the jar and found a java). */
export function s3ServerAvailable(): boolean {
  try {
    resolveS3ProxyJar();
    resolveJava();
    return true;
  } catch {
    return false;
  }
}

export interface S3ServerOptions {
  /** A folder of its own: the objects, the properties, the credentials and the log go here. */
  baseDir: string;
  /** Created at start (at least 3 characters). */
  bucket: string;
  /** How long the server may take to answer (default 60 s). */
  startupTimeoutMs?: number;
  /**
   * Keep the credentials of an earlier start in the same baseDir (its two 0600 files), so
   * that whatever was configured with them keeps working; new ones when there are none.
   * Default: new credentials at every start.
   */
  keepCredentials?: boolean;
}

export interface S3Server {
  endpoint: string;
  region: 'us-east-1';
  bucket: string;
  /** 0600 files holding the access key id and the secret access key. */
  accessKeyIdFile: string;
  secretAccessKeyFile: string;
  /** Where the server keeps the objects (one folder per bucket). */
  dataDir: string;
  stop(): Promise<void>;
}

export async function startS3Server(options: S3ServerOptions): Promise<S3Server> {
  if (options.bucket.length < 3) throw new Error(`bucket name ${JSON.stringify(options.bucket)} is too short: S3 needs at least 3 characters`);
  mkdirSync(options.baseDir, { recursive: true, mode: 0o700 });
  const credentials = (options.keepCredentials === true ? earlierCredentials(options.baseDir) : null) ?? {
    accessKeyId: `dbops${randomBytes(8).toString('hex')}`,
    secretAccessKey: randomBytes(24).toString('base64url'),
  };
  // A free port can be taken by someone else before the server binds it: a server that
  // exits at start is tried again on a fresh one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, credentials);
    } catch (error) {
      if (!(error instanceof ExitedAtStart) || attempt >= 3) throw error;
    }
  }
}

class ExitedAtStart extends Error {}

const ACCESS_KEY_ID_FILE = 'access-key-id';
const SECRET_ACCESS_KEY_FILE = 'secret-access-key';

/** The credentials an earlier start wrote into baseDir, if both files are there and look like ours. */
function earlierCredentials(baseDir: string): { accessKeyId: string; secretAccessKey: string } | null {
  const read = (name: string): string | null => {
    const file = path.join(baseDir, name);
    return existsSync(file) ? readFileSync(file, 'utf8').trim() : null;
  };
  const accessKeyId = read(ACCESS_KEY_ID_FILE);
  const secretAccessKey = read(SECRET_ACCESS_KEY_FILE);
  const shape = /^[A-Za-z0-9_-]{16,128}$/;
  if (accessKeyId === null || secretAccessKey === null || !shape.test(accessKeyId) || !shape.test(secretAccessKey)) return null;
  return { accessKeyId, secretAccessKey };
}

/** Written with 0600 from the start (a file left by an earlier start is replaced, not reused). */
function writePrivate(file: string, text: string): void {
  rmSync(file, { force: true });
  writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
}

/** A value in a Java properties file: backslashes are escapes there. */
function propertyValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

async function startOnce(options: S3ServerOptions, credentials: { accessKeyId: string; secretAccessKey: string }): Promise<S3Server> {
  const { baseDir, bucket } = options;
  const dataDir = path.join(baseDir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const propertiesFile = path.join(baseDir, 's3proxy.properties');
  writePrivate(
    propertiesFile,
    [
      // Jetty binds the endpoint's host: loopback only.
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.identity=${credentials.accessKeyId}`,
      `s3proxy.credential=${credentials.secretAccessKey}`,
      'jclouds.provider=filesystem-nio2',
      `jclouds.filesystem.basedir=${propertyValue(dataDir)}`,
      '',
    ].join('\n'),
  );
  const logFile = path.join(baseDir, 's3proxy.log');
  closeSync(openSync(logFile, 'a', 0o600));
  const child: ResultPromise = execa(resolveJava(), ['-Xmx512m', '-XX:+UseSerialGC', '-jar', resolveS3ProxyJar(), '--properties', propertiesFile], {
    env: childEnv(),
    extendEnv: false,
    stdin: 'ignore',
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
    reject: false,
    cleanup: true,
  });
  const { exited, stop } = stopperOf(child);

  const client = createS3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 2_000 },
  });
  try {
    const timeoutMs = options.startupTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown = null;
    for (;;) {
      if (exited()) {
        const why = tail(logFile, 200)
          .split('\n')
          .filter((l) => /exception|error|bind|address already in use/i.test(l))
          .slice(0, 3);
        throw new ExitedAtStart(`S3Proxy exited at start: ${why.join(' ').slice(0, 1000) || 'no output'} (log: ${logFile})`);
      }
      try {
        await client.send(new ListBucketsCommand({}));
        break;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `S3Proxy at ${endpoint} did not answer within ${Math.round(timeoutMs / 1000)} s: ${(lastError as Error | null)?.message ?? 'no answer'}\n` +
            `last lines of ${logFile}:\n${tail(logFile)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (error) {
      // Left by an earlier start on the same folder: its objects are what a restart is for.
      if (!(error instanceof Error && error.name === 'BucketAlreadyOwnedByYou')) throw error;
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    client.destroy();
  }

  const accessKeyIdFile = path.join(baseDir, ACCESS_KEY_ID_FILE);
  const secretAccessKeyFile = path.join(baseDir, SECRET_ACCESS_KEY_FILE);
  writePrivate(accessKeyIdFile, credentials.accessKeyId + '\n');
  writePrivate(secretAccessKeyFile, credentials.secretAccessKey + '\n');
  return { endpoint, region: 'us-east-1', bucket, accessKeyIdFile, secretAccessKeyFile, dataDir, stop };
}
