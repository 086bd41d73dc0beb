/**
 * `dbops dev --demo`, the README's first command, on both products: the embedded stack comes up, the demo
 * backup is taken and listed, dev.json tells other tools where everything is, and SIGTERM
 * stops it all (no server left running). With --s3 the repository is an encrypted bucket
 * in a server dev starts: its backups are listed again after a restart, and the bucket
 * holds no plaintext.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createConnection } from 'mysql2/promise';
import { loadConfig } from '../../src/config/load';
import { resolveSecret } from '../../src/config/secrets';
import type { DevState } from '../../src/client/dev';
import { s3ServerAvailable } from '../../src/dev/s3Server';
import { processAlive } from '../../src/mysql/servers/local';
import { createS3Client } from '../../src/tools/s3Client';
import { CLI, harness, products, runCli } from '../harness/context';

/**
 * After a failed assertion: SIGTERM first, so dev stops its servers (a SIGKILL would leave
 * them running, holding the pipes this process reads, and jest would never exit); SIGKILL
 * only if it does not stop within half a minute.
 */
async function stopDev(child: ChildProcessByStdio<null, Readable, Readable>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([exited, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 30_000)))]);
    clearTimeout(timer);
    if (!stopped) child.kill('SIGKILL');
  }
  child.stdout.destroy();
  child.stderr.destroy();
}

test.each(products())('dbops dev --product %s --demo: sandbox + dev server + worker, demo backup, clean stop on SIGTERM', async (product) => {
  const stateDir = mkdtempSync(path.join(harness().baseDir, 'dev-'));
  const child = spawn(process.execPath, [CLI, 'dev', '--product', product, '--state-dir', stateDir, '--demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!stdout.includes('running; Ctrl-C stops everything')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`dbops dev did not come up:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(stdout).toMatch(/demo: backup \d{8}T\d{6}\.\d{3}Z-full verified: 3 tables, 2200 rows/);
    expect(stdout).toMatch(/Web UI: http:\/\/localhost:\d+/);
    expect(stdout).toContain('schedules: dbops/sandbox/backup-differential, dbops/sandbox/backup-full, dbops/sandbox/backup-incremental, dbops/sandbox/drill, dbops/sandbox/drill-full, dbops/sandbox/repo-verify, dbops/sandbox/retention');

    const state = JSON.parse(readFileSync(path.join(stateDir, 'dev.json'), 'utf8')) as {
      configPath: string;
      cluster: string;
      temporalAddress: string;
      uiUrl: string;
      metricsUrl: string;
      mysql: { host: string; port: number; socket: string; user: string };
    };
    expect(state.cluster).toBe('sandbox');
    expect(state.uiUrl).toMatch(/^http:\/\/localhost:\d+$/);
    const ui = await fetch(state.uiUrl);
    expect(ui.status).toBe(200);
    // The demo's backup shows in the metrics.
    expect(await (await fetch(state.metricsUrl)).text()).toMatch(/dbops_backup_last_success_timestamp_seconds\{cluster="sandbox",type="full"\} \d+/);

    // The generated config works with the least-privileged user and a file secret.
    const config = loadConfig(state.configPath);
    const password = resolveSecret(config.clusters[0]!.password!, 'password');
    expect(readFileSync(state.configPath, 'utf8')).not.toContain(password);
    const conn = await createConnection({ host: state.mysql.host, port: state.mysql.port, user: state.mysql.user, password });
    const [rows] = await conn.query('SELECT COUNT(*) AS n FROM shop.orders');
    expect(rows).toEqual([{ n: 2000 }]);
    await conn.end();
    expect(readFileSync(state.configPath, 'utf8')).toContain(product === 'mysql' ? 'product: mysql' : `socket: ${state.mysql.socket}`);
    const pidFile = path.join(stateDir, product, 'mysqld.pid');
    const mariadbPid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(processAlive(mariadbPid)).toBe(true);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(processAlive(mariadbPid)).toBe(false);
    expect(existsSync(state.mysql.socket)).toBe(false);
  } finally {
    await stopDev(child);
  }
});

/** `dbops dev ARGS` as a child process, its stdout collected. */
function startDev(args: string[]): { child: ChildProcessByStdio<null, Readable, Readable>; stdout: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, exited };
}

/** Every file under a folder, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []));
}

const modeOf = (file: string) => statSync(file).mode & 0o777;

(s3ServerAvailable() ? test : test.skip)(
  'dbops dev --s3 --demo: the repository is an encrypted bucket in a server dev starts and stops; a restart lists the earlier backup; no plaintext in the bucket',
  async () => {
    const stateDir = mkdtempSync(path.join(harness().baseDir, 'dev-s3-'));
    const first = startDev(['--s3', '--state-dir', stateDir, '--demo']);
    let state: DevState;
    let firstId: string;
    try {
      const deadline = Date.now() + 180_000;
      while (!first.stdout().includes('running; Ctrl-C stops everything')) {
        if (Date.now() > deadline || first.child.exitCode !== null) throw new Error(`dbops dev --s3 did not come up:\n${first.stdout()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const verified = /demo: backup (\d{8}T\d{6}\.\d{3}Z-full) verified: 3 tables, 2200 rows/.exec(first.stdout());
      expect(verified).not.toBeNull();
      firstId = verified![1]!;
      expect(first.stdout()).toContain('repository: s3://dbops-dev/dev (encrypted, key dev)');

      // dev.json says where the bucket is and which files hold its credentials and the key (0600 each).
      state = JSON.parse(readFileSync(path.join(stateDir, 'dev.json'), 'utf8')) as DevState;
      const s3 = state.s3!;
      expect(s3).toEqual(
        expect.objectContaining({ bucket: 'dbops-dev', prefix: 'dev', region: 'us-east-1', endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) }),
      );
      for (const file of [s3.accessKeyIdFile, s3.secretAccessKeyFile, s3.encryptionKeyFile]) {
        expect({ file, inStateDir: file.startsWith(stateDir + path.sep), mode: modeOf(file).toString(8) }).toEqual({ file, inStateDir: true, mode: '600' });
      }
      expect(s3.dataDir.startsWith(path.join(stateDir, 's3') + path.sep)).toBe(true);

      // The generated config: the bucket and the key by reference only.
      const config = loadConfig(state.configPath);
      expect(config.repository.path).toBeUndefined();
      expect(config.repository.s3).toEqual(expect.objectContaining({ endpoint: s3.endpoint, bucket: 'dbops-dev', prefix: 'dev', pathStyle: true }));
      expect(config.repository.encryption).toEqual({ current: 'dev', keys: { dev: { file: s3.encryptionKeyFile } } });
      const configText = readFileSync(state.configPath, 'utf8');
      for (const secret of [s3.secretAccessKeyFile, s3.encryptionKeyFile].map((f) => readFileSync(f, 'utf8').trim())) expect(configText).not.toContain(secret);

      // Listed from the bucket: by another dbops process through the config, and as an object the server holds.
      const listed = await runCli(['backup', 'list', '--cluster', 'sandbox', '--json', '--config', state.configPath]);
      expect(listed.stderr).toBe('');
      expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((m) => m.id)).toContain(firstId);
      const client = createS3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: readFileSync(s3.accessKeyIdFile, 'utf8').trim(), secretAccessKey: readFileSync(s3.secretAccessKeyFile, 'utf8').trim() },
      });
      try {
        const objects = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${s3.prefix}/sandbox/full/` }));
        expect((objects.Contents ?? []).map((o) => o.Key)).toContainEqual(expect.stringMatching(new RegExp(`^dev/sandbox/full/\\d{4}-\\d{2}-\\d{2}/${firstId}/manifest\\.json$`)));
      } finally {
        client.destroy();
      }

      // SIGTERM stops the S3 server with the rest.
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
      await expect(fetch(`${s3.endpoint}/healthz`)).rejects.toThrow();
    } finally {
      await stopDev(first.child);
    }

    // A second start on the same state: same bucket, key and credentials; the first backup is listed with the new one.
    const credentialsBefore = readFileSync(state.s3!.accessKeyIdFile, 'utf8');
    const keyBefore = readFileSync(state.s3!.encryptionKeyFile, 'utf8');
    const second = startDev(['--s3', '--state-dir', stateDir, '--demo', '--exit-after-demo']);
    try {
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([second.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 180_000)))]);
      clearTimeout(timer);
      expect({ code, stdout: second.stdout() }).toEqual({ code: 0, stdout: expect.stringMatching(/demo: the repository holds \d+ backup\(s\) of sandbox/) });
    } finally {
      await stopDev(second.child);
    }
    const secondId = /demo: backup (\S+) verified/.exec(second.stdout())![1]!;
    const listedIds = [...second.stdout().matchAll(/^ {2}(\S+) {2}/gm)].map((m) => m[1]);
    expect(listedIds).toEqual(expect.arrayContaining([firstId, secondId]));
    expect(secondId).not.toBe(firstId);
    expect(readFileSync(state.s3!.accessKeyIdFile, 'utf8')).toBe(credentialsBefore);
    expect(readFileSync(state.s3!.encryptionKeyFile, 'utf8')).toBe(keyBefore);

    // What someone holding the bucket's folder sees: sealed objects only.
    const stored = filesUnder(path.join(state.s3!.dataDir, state.s3!.bucket));
    expect(stored.filter((f) => f.endsWith(`${path.sep}manifest.json`)).length).toBeGreaterThanOrEqual(2);
    const needles = ['c1@example.com', 'Customer 1', 'INSERT INTO', 'CREATE TABLE', 'shop'];
    for (const file of stored) {
      const body = readFileSync(file);
      for (const needle of needles) expect({ file, needle, found: body.includes(Buffer.from(needle)) }).toEqual({ file, needle, found: false });
    }
  },
  420_000,
);
