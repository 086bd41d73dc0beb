/**
 * Several repositories: a fast local one and an encrypted copy in the S3 server. Every
 * published backup is copied by the durable copy workflow; `storage info` shows each
 * repository and its lag; with the local repository gone, a restore reads from the copy.
 * An outage of the copy (its bucket missing) is waited out and caught up. And two workers
 * that share only Temporal and one S3 repository take one backup per cluster at a time.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { explainFailure, startBackup, waitForManifest } from '../../src/client/backups';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import type { Manifest } from '../../src/domain/manifest';
import { copyWorkflowId } from '../../src/domain/naming';
import { createS3Client } from '../../src/tools/s3Client';
import { makeTestConfig, rootConnection, runCli, s3Objects, s3Server, tableChecksums, temporalClient, withWorker, type TestSetup, sqlOn } from '../harness/context';

jest.setTimeout(600_000);

const DB = 'copies';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A copy repository in the shared S3 server, sealed with its own key. */
function copyIn(dir: string, bucket: string, prefix: string): Record<string, unknown> {
  const s3 = s3Server();
  const keyFile = path.join(dir, `copy-${prefix.replace(/\W/g, '-')}.key`);
  writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  return {
    name: 'offsite',
    s3: { endpoint: s3.endpoint, region: s3.region, bucket, prefix, pathStyle: true, accessKeyId: { file: s3.accessKeyIdFile }, secretAccessKey: { file: s3.secretAccessKeyFile } },
    encryption: { current: 'c1', keys: { c1: { file: keyFile } } },
  };
}

/** Waits for the cluster's copy workflow to finish (it may be restarted by a later backup's signal). */
async function copyFinished(client: Client, cluster = 'test'): Promise<unknown> {
  for (let i = 0; i < 600; i++) {
    const handle: WorkflowHandle = client.workflow.getHandle(copyWorkflowId(cluster, 'offsite'));
    const d = await handle.describe().catch(() => null);
    if (d && d.status.name !== 'RUNNING') return handle.result();
    await sleep(500);
  }
  throw new Error('the copy workflow never finished');
}

describe('copies to a further repository', () => {
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  let live: Record<string, string>;
  let backups: Manifest[] = [];
  let prefix: string;

  const sql = (query: string, params: unknown[] = []) => sqlOn('mariadb', query, params);

  beforeAll(async () => {
    const conn = await rootConnection('mariadb');
    for (const d of [DB, 'copies_restored']) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await seedSampleDatabase(conn, { database: DB, customers: 30, orders: 300 });
    await conn.end();
    ({ client, close: closeClient } = await temporalClient());
  });
  afterAll(async () => {
    await closeClient();
  });

  test('every backup is copied, storage info shows the lag, and with the local repository lost a restore reads the copy', async () => {
    setup = makeTestConfig('copies', {
      databases: [DB],
      mutate: (raw) => {
        prefix = `copies/${path.basename(String((raw.repository as { path: string }).path).replace('/repository', ''))}-${randomBytes(3).toString('hex')}`;
        raw.copies = [copyIn(path.dirname(String((raw.repository as { path: string }).path)), s3Server().bucket, prefix)];
      },
    });
    await withWorker(setup.config, async () => {
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' })));
      await sql(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) SELECT customer_id, 'paid', total + 2, 'copied', NOW() FROM ${DB}.orders LIMIT 25`);
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000))));
      const conn = await rootConnection('mariadb');
      live = await tableChecksums(conn, DB);
      await conn.end();
      const result = (await copyFinished(client)) as { copied: Array<{ id: string }>; failed: unknown[] };
      expect(result.failed).toEqual([]);
      // A later run may have copied the incremental: together they copied both, each once.
      const info = await runCli(['storage', 'info', '--json', '--config', setup.configPath]);
      const report = JSON.parse(info.stdout);
      expect(report.copies).toHaveLength(1);
      expect(report.copies[0]).toMatchObject({ name: 'offsite', error: null, clusters: [{ cluster: 'test', backups: 2, lag: { missing: 0, lagSeconds: 0, oldestMissing: null } }] });
      const status = await runCli(['status', '--config', setup.configPath]);
      expect(status.stdout).toMatch(/repositories:\n  primary  .*\n  offsite  test +caught up/);
    });
    // The copy is sealed with its own key: nothing readable in the bucket.
    const objects = await s3Objects(prefix);
    expect(objects.filter((o) => o.key.endsWith('/manifest.json'))).toHaveLength(2);
    for (const o of objects) expect(o.body.includes(Buffer.from('INSERT INTO'))).toBe(false);

    rmSync(setup.config.repository.path!, { recursive: true, force: true }); // the worker's disk is lost
    await withWorker(setup.config, async () => {
      const listed = await runCli(['backup', 'validate', backups[1]!.id, '--cluster', 'test', '--config', setup.configPath]);
      expect(listed.stderr).toBe('');
      const r = await runCli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', 'latest', '--into', 'copies_restored', '--wait', '--json', '--config', setup.configPath]);
      expect(r.stderr).toBe('');
    });
    const conn = await rootConnection('mariadb');
    try {
      expect(await tableChecksums(conn, 'copies_restored')).toEqual(live);
    } finally {
      await conn.end();
    }
  });

  test('an outage of the copy is waited out: the lag shows, and the copy catches up once it is back', async () => {
    const bucket = `dbops-outage-${randomBytes(4).toString('hex')}`;
    const outage = makeTestConfig('copies-outage', {
      databases: [DB],
      mutate: (raw) => {
        raw.copies = [copyIn(path.dirname(String((raw.repository as { path: string }).path)), bucket, 'copies')];
      },
    });
    await withWorker(outage.config, async () => {
      const full = await waitForManifest(await startBackup(client, outage.config, 'full', { cluster: 'test' }));
      const handle = client.workflow.getHandle(copyWorkflowId('test', 'offsite'));
      // The copy workflow keeps trying while the bucket is missing.
      for (let i = 0; ; i++) {
        const d = await handle.describe().catch(() => null);
        const attempt = d?.raw.pendingActivities?.[0]?.attempt ?? 0;
        if (d?.status.name === 'RUNNING' && attempt >= 2) break;
        if (i > 600) throw new Error('the copy never retried');
        await sleep(250);
      }
      const info = JSON.parse((await runCli(['storage', 'info', '--json', '--config', outage.configPath])).stdout);
      expect(info.copies[0].error).toMatch(/bucket|NoSuchBucket|does not exist/i);

      const s3 = s3Server();
      const admin = createS3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: readFileSync(s3.accessKeyIdFile, 'utf8').trim(), secretAccessKey: readFileSync(s3.secretAccessKeyFile, 'utf8').trim() } });
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      admin.destroy();

      const result = (await handle.result()) as { copied: Array<{ id: string }> };
      expect(result.copied.map((c) => c.id)).toContain(full.id);
      const after = JSON.parse((await runCli(['storage', 'info', '--json', '--config', outage.configPath])).stdout);
      expect(after.copies[0].clusters[0].lag.missing).toBe(0);
    });
  });

  test('two workers sharing only Temporal and one S3 repository: one backup of a cluster at a time, every published backup listed', async () => {
    const first = makeTestConfig('shared-a', { databases: [DB], s3: true });
    const prefixShared = first.config.repository.s3!.prefix;
    const second = makeTestConfig('shared-b', { databases: [DB], s3: { prefix: prefixShared }, mutate: (raw) => ((raw.temporal as { taskQueue: string }).taskQueue = first.config.temporal.taskQueue) });
    await withWorker(first.config, () =>
      withWorker(second.config, async () => {
        const at = Date.now() + 5000;
        const runs = await Promise.allSettled([
          startBackup(client, first.config, 'full', { cluster: 'test' }, new Date(at)).then(waitForManifest),
          startBackup(client, second.config, 'full', { cluster: 'test' }, new Date(at + 1)).then(waitForManifest),
        ]);
        const ok = runs.filter((r): r is PromiseFulfilledResult<Manifest> => r.status === 'fulfilled');
        const refused = runs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        // Both may succeed one after the other if the first finished before the second looked; never both at once.
        expect(ok.length).toBeGreaterThanOrEqual(1);
        for (const r of refused) expect(explainFailure(r.reason)).toMatch(/busy|holds|another|running/i);
        const more = await waitForManifest(await startBackup(client, second.config, 'incremental', { cluster: 'test' }, new Date(at + 3000)));
        const listed = JSON.parse((await runCli(['backup', 'list', '--cluster', 'test', '--json', '--config', first.configPath])).stdout) as Manifest[];
        expect(listed.map((m) => m.id).sort()).toEqual([...ok.map((r) => r.value.id), more.id].sort());
        if (ok.length === 2) expect(Date.parse(ok[0]!.value.finishedAt) <= Date.parse(ok[1]!.value.startedAt) || Date.parse(ok[1]!.value.finishedAt) <= Date.parse(ok[0]!.value.startedAt)).toBe(true);
      }),
    );
  });
});
