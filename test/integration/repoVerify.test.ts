/**
 * `dbops repo verify` against the S3 server, encrypted, on each product: after a full and
 * two incrementals a run reports the repository clean and alerts at info; then one
 * artifact gets a flipped byte, one is cut short, one is deleted, a manifest is altered and
 * an object is dropped into a backup's folder, and the next run names each with its class
 * (the backup built on the altered one as a broken chain), exits 1 with the problems on
 * stderr, stores its report sealed under the cluster, and raises a critical alert.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import type { Manifest } from '../../src/domain/manifest';
import type { RepoVerifyReport } from '../../src/domain/repoVerify';
import { makeTestConfig, products, rootConnection, runCli, s3Objects, s3Put, temporalClient, withWorker, type TestSetup, sqlOn } from '../harness/context';

jest.setTimeout(600_000);

interface VerifyOutput {
  workflowId: string;
  clean: boolean;
  reports: RepoVerifyReport[];
  files: string[];
}

describe.each(products())('repository verify, S3 and encrypted, on %s', (product) => {
  const DB = 'repoverify';
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  let prefix: string;
  const backups: Manifest[] = [];

  const sql = (query: string, params: unknown[] = []) => sqlOn(product, query, params);

  /** Repository keys (as the report names them) and object keys in the bucket. */
  const folder = (m: Manifest) => `test/${m.type}/${m.startedAt.slice(0, 10)}/${m.id}`;
  const artifact = (m: Manifest, i: number) => `${folder(m)}/${m.artifacts[i]!.name}`;
  const object = (key: string) => `${prefix}/${key}`;

  const verify = () => withWorker(setup.config, () => runCli(['repo', 'verify', '--cluster', 'test', '--wait', '--json', '--config', setup.configPath]));

  /** The notify activities the run scheduled, with their input. */
  async function alerts(workflowId: string): Promise<Array<{ severity: string; event: string; cluster: string; message: string }>> {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    return (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => a?.activityType?.name === 'notify')
      .map((a) => defaultPayloadConverter.fromPayload(a!.input!.payloads![0]!));
  }

  beforeAll(async () => {
    const conn = await rootConnection(product);
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await seedSampleDatabase(conn, { database: DB, customers: 30, orders: 300 });
    await conn.end();
    setup = makeTestConfig(`repoverify-${product}`, { databases: [DB], product, s3: true, encrypted: true });
    prefix = setup.config.repository.s3!.prefix;
    ({ client, close: closeClient } = await temporalClient());
    const insert = (note: string) => sql(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) SELECT customer_id, 'paid', total + 1, '${note}', NOW() FROM ${DB}.orders LIMIT 20`);
    await withWorker(setup.config, async () => {
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' })));
      await insert('after full');
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000))));
      // A rotation in between: the second incremental holds two binlogs.
      await insert('before rotation');
      await sql('FLUSH BINARY LOGS');
      await insert('after rotation');
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 2000))));
    });
    expect(backups.map((b) => b.type)).toEqual(['full', 'incremental', 'incremental']);
    expect(backups[2]!.parentId).toBe(backups[1]!.id);
    expect(backups[2]!.artifacts.length).toBeGreaterThanOrEqual(2);
  });

  afterAll(async () => {
    await closeClient();
  });

  test('a clean repository: every artifact re-read, clean, exit 0, the report stored sealed, an info alert', async () => {
    const r = await verify();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as VerifyOutput;
    expect(out.clean).toBe(true);
    const report = out.reports[0]!;
    const stored = backups.reduce((n, b) => n + b.artifacts.reduce((m, a) => m + a.size, 0), 0);
    expect(report).toMatchObject({ cluster: 'test', clean: true, severity: 'info', backupsChecked: 3, bytesRead: stored, problems: [], unverified: [] });
    expect(report.artifactsChecked).toBe(backups.reduce((n, b) => n + b.artifacts.length, 0));
    expect(report.repository).toMatch(/^s3:\/\/.*\(encrypted, key k1\)$/);
    expect(out.files).toEqual([`test/verify/${report.runKey}.json`]);

    const reports = await s3Objects(`${prefix}/test/verify/`);
    expect(reports.map((o) => o.key)).toEqual([object(`test/verify/${report.runKey}.json`)]);
    expect(reports[0]!.body.includes(Buffer.from('"clean"'))).toBe(false); // sealed like everything else

    expect(await alerts(out.workflowId)).toEqual([expect.objectContaining({ severity: 'info', event: 'repository-verify', cluster: 'test', message: expect.stringMatching(/^repository verify of test: clean; 3 backup\(s\)/) })]);
  });

  test('damage: a flipped byte, a cut object, a deleted object, an altered manifest and an orphan, each in its class; exit 1; a critical alert', async () => {
    const [full, first, second] = backups as [Manifest, Manifest, Manifest];
    const body = async (key: string) => (await s3Objects(object(key))).find((o) => o.key === object(key))!.body;

    const flipped = await body(artifact(full, 0));
    flipped[flipped.length - 100] = flipped[flipped.length - 100]! ^ 0x04;
    await s3Put(object(artifact(full, 0)), flipped);
    const cut = await body(artifact(second, 0));
    await s3Put(object(artifact(second, 0)), cut.subarray(0, Math.floor(cut.length / 2)));
    await s3Put(object(artifact(second, 1)), null);
    const envelope = JSON.parse((await body(`${folder(first)}/manifest.json`)).toString()) as { data: string };
    const sealed = Buffer.from(envelope.data, 'base64');
    sealed[sealed.length - 30] = sealed[sealed.length - 30]! ^ 0x01;
    await s3Put(object(`${folder(first)}/manifest.json`), Buffer.from(JSON.stringify({ ...envelope, data: sealed.toString('base64') })));
    await s3Put(object(`${folder(full)}/left-behind.bin`), Buffer.from('nobody lists me'));

    const r = await verify();
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as VerifyOutput;
    expect(out.clean).toBe(false);
    const report = out.reports[0]!;
    expect(report).toMatchObject({ clean: false, severity: 'critical', backupsChecked: 2 });
    expect(report.problems.map((p) => [p.class, p.key, p.backupId]).sort()).toEqual(
      [
        ['corrupt', artifact(full, 0), full.id],
        ['corrupt', artifact(second, 0), second.id],
        ['missing', artifact(second, 1), second.id],
        ['unusable-manifest', folder(first), first.id],
        ['chain', folder(second), second.id],
        ['orphaned', `${folder(full)}/left-behind.bin`, full.id],
      ].sort(),
    );
    const detail = (cls: string, key: string) => report.problems.find((p) => p.class === cls && p.key === key)!.detail;
    expect(detail('corrupt', artifact(full, 0))).toMatch(/chunk \d+ \(from plaintext byte \d+\) fails authentication/);
    expect(detail('corrupt', artifact(second, 0))).toMatch(/size \d+, manifest says \d+/);
    expect(detail('unusable-manifest', folder(first))).toMatch(/manifest\.json: chunk 0 .*fails authentication/);
    expect(detail('chain', folder(second))).toMatch(new RegExp(`its parent ${first.id} has a manifest that cannot be used`));
    expect(report.counts).toEqual({ corrupt: 2, missing: 1, 'unusable-manifest': 1, chain: 1, orphaned: 1 });

    expect(r.stderr).toMatch(/^dbops: the repository of test is NOT clean: 2 corrupt, 1 missing, 1 unusable manifest, 1 chain, 1 orphaned\n/);
    for (const p of report.problems) expect(r.stderr).toContain(`dbops:   ${p.class}: ${p.key}: `);

    const sent = await alerts(out.workflowId);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ severity: 'critical', event: 'repository-verify', cluster: 'test' });
    expect(sent[0]!.message).toMatch(/^repository verify of test: BACKUPS CANNOT BE RESTORED AS THEY ARE: 2 corrupt, 1 missing, 1 unusable manifest, 1 chain, 1 orphaned;/);
    expect((await s3Objects(`${prefix}/test/verify/`)).map((o) => o.key)).toContain(object(`test/verify/${report.runKey}.json`));
  });
});
