/**
 * A worker killed hard (SIGKILL) in the middle of a dump: the dump is retried by another
 * worker, the workflow completes with exactly one published backup, and no partial file
 * is ever visible in the repository.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { startFullBackup, waitForManifest } from '../../src/client/backups';
import { openRepository, verifyArtifactFile } from '../../src/repository';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { makeTestConfig, rootConnection, runCli, s3Uploads, spawnCliWorker, temporalClient, withWorker } from '../harness/context';

const DB = 'crashtest';

function stagedBytes(stagingRoot: string): number {
  if (!existsSync(stagingRoot)) return 0;
  let total = 0;
  for (const id of readdirSync(stagingRoot)) {
    for (const f of readdirSync(path.join(stagingRoot, id))) total += statSync(path.join(stagingRoot, id, f)).size;
  }
  return total;
}

/** Everything visible outside staging: the published backups' folders and files. */
function visibleFiles(repo: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue; // staging and the cluster's lock file
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else found.push(path.relative(repo, p));
    }
  };
  if (existsSync(repo)) walk(repo);
  return found.sort();
}

test('SIGKILL of the worker mid-dump: retried elsewhere, exactly one backup, no partial files visible', async () => {
  const conn = await rootConnection();
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await seedSampleDatabase(conn, { database: DB, customers: 100, orders: 4000 });
  // Grow to 256k rows server-side (fast) with poorly compressible notes (~60 MB of dump),
  // so that the dump lasts long enough to be killed in the middle.
  for (let i = 0; i < 6; i++) {
    await conn.query(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) SELECT customer_id, status, total, note, created_at FROM ${DB}.orders`);
  }
  await conn.query(`UPDATE ${DB}.orders SET note = CONCAT(SHA2(id, 256), SHA2(id + 7, 256))`);
  const [[{ n: orderCount }]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${DB}.orders`)) as unknown as [[{ n: string }]];
  await conn.end();

  // zstd -15 makes compression the bottleneck (~10 MB/s here), so each attempt takes seconds.
  const setup = makeTestConfig('crash', { databases: [DB], compressionLevel: 15 });
  const repo = setup.config.repository.path!;
  const stagingRoot = path.join(repo, 'test', '.staging');
  const first = spawnCliWorker(setup.configPath, path.join(setup.dir, 'worker-1.log'));
  const { client, close } = await temporalClient();
  try {
    const handle = await startFullBackup(client, setup.config, {
      cluster: 'test',
      requestedBy: 'jest',
      timeouts: { heartbeat: '4 seconds' },
    });

    // Wait until the first worker is mid-dump, then kill it without warning.
    const deadline = Date.now() + 90_000;
    while (stagedBytes(stagingRoot) < 1024 * 1024) {
      if (Date.now() > deadline) throw new Error('the first worker never started dumping');
      if (first.exitCode !== null) throw new Error(`the first worker exited early (${first.exitCode}); see ${setup.dir}/worker-1.log`);
      await new Promise((r) => setTimeout(r, 50));
    }
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(visibleFiles(repo)).toEqual([]); // half a dump is never visible

    // A second worker takes over once the dead one's heartbeat times out.
    const manifest = await withWorker(setup.config, () => waitForManifest(handle));

    const history = await handle.fetchHistory();
    const dumpAttempts = (history.events ?? [])
      .map((e) => e.activityTaskStartedEventAttributes?.attempt)
      .filter((a): a is number => typeof a === 'number');
    expect(Math.max(...dumpAttempts)).toBeGreaterThanOrEqual(2);

    const backups = await openRepository({ repository: { path: repo, compression: 'zstd' } }).catalog.list('test');
    expect(backups.map((b) => b.manifest.id)).toEqual([manifest.id]);
    expect(readdirSync(stagingRoot)).toEqual([]);
    expect(visibleFiles(repo)).toEqual(
      [
        path.join('test', 'full', 'index.json'),
        path.join(backups[0]!.relativePath, 'dump.sql.zst'),
        path.join(backups[0]!.relativePath, 'manifest.json'),
      ].sort(),
    );
    const check = await verifyArtifactFile(path.join(backups[0]!.dir!, 'dump.sql.zst'), manifest.artifacts[0]!);
    expect(check).toEqual({ ok: true, problems: [] });
    expect(manifest.tables.find((t) => t.table === 'orders')?.rows).toBe(Number(orderCount));
  } finally {
    if (first.exitCode === null) first.kill('SIGKILL');
    await close();
  }
});

test('SIGKILL of the worker mid-upload to an encrypted S3 repository: nothing visible, no upload left behind after the retry', async () => {
  const setup = makeTestConfig('crash-s3', { databases: [DB], compressionLevel: 15, s3: true, encrypted: true });
  const prefix = setup.config.repository.s3!.prefix;
  const list = async () => JSON.parse((await runCli(['backup', 'list', '--cluster', 'test', '--json', '--config', setup.configPath])).stdout) as Array<{ id: string }>;
  const first = spawnCliWorker(setup.configPath, path.join(setup.dir, 'worker-1.log'));
  const { client, close } = await temporalClient();
  try {
    const handle = await startFullBackup(client, setup.config, { cluster: 'test', requestedBy: 'jest', timeouts: { heartbeat: '4 seconds' } });
    // Mid-upload: a multipart upload of the dump has stored at least one part.
    const deadline = Date.now() + 120_000;
    while (!(await s3Uploads(prefix)).some((u) => u.parts > 0)) {
      if (Date.now() > deadline) throw new Error('the first worker never started uploading');
      if (first.exitCode !== null) throw new Error(`the first worker exited early (${first.exitCode}); see ${setup.dir}/worker-1.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(await list()).toEqual([]); // nothing half-written is a backup
    expect((await s3Uploads(prefix)).length).toBeGreaterThan(0); // the dead worker's upload is still there

    const manifest = await withWorker(setup.config, () => waitForManifest(handle));
    expect((await list()).map((b) => b.id)).toEqual([manifest.id]);
    expect(await s3Uploads(prefix)).toEqual([]); // the retry aborted it before starting over
    const valid = await runCli(['backup', 'validate', manifest.id, '--cluster', 'test', '--config', setup.configPath]);
    expect(valid.code).toBe(0);
  } finally {
    if (first.exitCode === null) first.kill('SIGKILL');
    await close();
  }
});

test('--wait shows the running step and its bytes while a slow backup runs (quiet with --json)', async () => {
  const setup = makeTestConfig('progress', { databases: [DB], compressionLevel: 15 });
  await withWorker(setup.config, async () => {
    const shown = await runCli(['backup', 'full', '--cluster', 'test', '--wait', '--config', setup.configPath], { DBOPS_PROGRESS: '1' });
    expect(shown.code).toBe(0);
    expect(shown.stderr).toMatch(/^dumpFull: dumping: [\d.]+ (KiB|MiB) of SQL scanned, [\d.]+ (B|KiB|MiB) stored \(compressed\)$/m);
    const quiet = await runCli(['backup', 'full', '--cluster', 'test', '--wait', '--json', '--config', setup.configPath], { DBOPS_PROGRESS: '1' });
    expect(quiet.stderr).toBe('');
  });
});
