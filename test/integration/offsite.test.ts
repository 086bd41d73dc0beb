/**
 * Backups that survive the host: full + incrementals to a real S3-compatible server,
 * encrypted. Then the worker's host is "lost" (its folder, config and state deleted) and a
 * fresh worker with only a config and the key restores the incident's point in time from
 * the bucket, checksum for checksum. The bucket holds no plaintext; a flipped byte, a cut
 * object, a deleted object and an altered manifest are each reported and refused.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import type { Manifest } from '../../src/domain/manifest';
import { harness, makeTestConfig, products, rootConnection, runCli, s3Objects, s3Put, temporalClient, withWorker, type TestSetup, sqlOn, checksumsOn } from '../harness/context';

jest.setTimeout(600_000);

describe.each(products())('off-site, encrypted, on %s', (product) => {
  const DB = 'offsite';
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  let beforeDelete: Record<string, string>;
  let liveAfter: Record<string, string>;
  let secondBeforeDelete: string;
  let backups: Manifest[] = [];
  let prefix: string;
  let keyFile: string;

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const nextSecond = () => sleep(1000 - (Date.now() % 1000) + 50);
  const sql = (query: string, params: unknown[] = []) => sqlOn(product, query, params);
  const checksums = (db: string) => checksumsOn(product, db);

  beforeAll(async () => {
    const conn = await rootConnection(product);
    for (const d of [DB, 'offsite_restored', 'offsite_refused']) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await seedSampleDatabase(conn, { database: DB, customers: 60, orders: 800 });
    await conn.end();
    setup = makeTestConfig(`offsite-${product}`, { databases: [DB], product, s3: true, encrypted: true });
    prefix = setup.config.repository.s3!.prefix;
    // The key is kept apart from the worker's host, as a DBA keeps it in a vault.
    const vault = mkdtempSync(path.join(harness().baseDir, 'vault-'));
    keyFile = path.join(vault, 'repository.key');
    copyFileSync(setup.keyFile!, keyFile);
    ({ client, close: closeClient } = await temporalClient());

    await withWorker(setup.config, async () => {
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' })));
      await sql(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) SELECT customer_id, 'paid', total + 1, 'after full', NOW() FROM ${DB}.orders LIMIT 40`);
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000))));
      await sql(`INSERT INTO ${DB}.customers (name, email) VALUES ('Offsite Witness', 'witness-7f3a@example.com')`);
      beforeDelete = await checksums(DB);
      await nextSecond();
      secondBeforeDelete = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000).toISOString().replace('.000Z', 'Z');
      await sql(`DELETE FROM ${DB}.orders WHERE total > 0`);
      await nextSecond();
      await sql(`INSERT INTO ${DB}.orders (customer_id, status, total, note, created_at) VALUES (1, 'new', 9.99, 'after the accident', NOW())`);
      backups.push(await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 2000))));
      liveAfter = await checksums(DB);
    });
  });

  afterAll(async () => {
    await closeClient();
  });

  test('worker host lost: a fresh worker with only the config and the key restores the point in time from the bucket', async () => {
    expect(backups.map((b) => b.type)).toEqual(['full', 'incremental', 'incremental']);
    expect(backups.every((b) => b.encryption?.keyId === 'k1')).toBe(true);
    rmSync(setup.dir, { recursive: true, force: true }); // the host's folders, config, key copy and local state

    const fresh = makeTestConfig(`offsite-fresh-${product}`, { databases: [DB], product, s3: { prefix }, encrypted: { keyFile } });
    await withWorker(fresh.config, async () => {
      const listed = await runCli(['backup', 'list', '--cluster', 'test', '--json', '--config', fresh.configPath]);
      expect(listed.stderr).toBe('');
      expect(JSON.parse(listed.stdout).map((m: Manifest) => m.id)).toEqual(backups.map((b) => b.id));
      const restored = await runCli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', secondBeforeDelete, '--into', 'offsite_restored', '--wait', '--json', '--config', fresh.configPath]);
      expect(restored.stderr).toBe('');
      expect(JSON.parse(restored.stdout).plan.chain.map((c: { type: string }) => c.type)).toEqual(['incremental', 'incremental']);
    });
    expect(await checksums('offsite_restored')).toEqual(beforeDelete);
    expect(await checksums(DB)).toEqual(liveAfter);
  });

  test('no plaintext in the bucket: no row value, no SQL, no schema name in any stored object', async () => {
    const objects = await s3Objects(prefix);
    expect(objects.filter((o: { key: string }) => o.key.endsWith('/manifest.json'))).toHaveLength(3);
    const needles = ['witness-7f3a@example.com', 'c12@example.com', 'after the accident', 'INSERT INTO', 'CREATE TABLE', 'DELETE FROM', 'offsite', 'orders', 'customers'];
    for (const o of objects) {
      for (const needle of needles) expect({ key: o.key, found: o.body.includes(Buffer.from(needle)) }).toEqual({ key: o.key, found: false });
    }
  });

  describe('damage in the bucket is reported by validate and refused by restore', () => {
    let config: TestSetup;
    beforeAll(() => {
      config = makeTestConfig(`offsite-damage-${product}`, { databases: [DB], product, s3: { prefix }, encrypted: { keyFile } });
    });
    const artifactKey = (m: Manifest, i = 0) => `${prefix}/test/${m.type}/${m.startedAt.slice(0, 10)}/${m.id}/${m.artifacts[i]!.name}`;
    const manifestKey = (m: Manifest) => `${prefix}/test/${m.type}/${m.startedAt.slice(0, 10)}/${m.id}/manifest.json`;
    const validate = (id: string) => runCli(['backup', 'validate', id, '--cluster', 'test', '--config', config.configPath]);
    const restore = () =>
      withWorker(config.config, () => runCli(['restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', secondBeforeDelete, '--into', 'offsite_refused', '--wait', '--config', config.configPath]));

    async function damaged(key: string, change: (body: Buffer | null) => Buffer | null, check: () => Promise<void>): Promise<void> {
      const original = (await s3Objects(key)).find((o: { key: string }) => o.key === key)!.body;
      await s3Put(key, change(Buffer.from(original)));
      try {
        await check();
      } finally {
        await s3Put(key, original);
      }
      expect((await validate(backups[0]!.id)).code).toBe(0);
    }

    test('a flipped byte: validate names the chunk, restore refuses, nothing is created', async () => {
      await damaged(
        artifactKey(backups[0]!),
        (b) => {
          b![b!.length - 100] = b![b!.length - 100]! ^ 0x04;
          return b;
        },
        async () => {
          const v = await validate(backups[0]!.id);
          expect(v.code).toBe(1);
          expect(v.stderr).toMatch(/NOT valid: .*chunk \d+ \(from plaintext byte \d+\) fails authentication/);
          const r = await restore();
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(/fails authentication/);
          expect(await sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'offsite_refused'")).toEqual([]);
        },
      );
    });

    test('a truncated object and a deleted object: validate says which and how', async () => {
      await damaged(artifactKey(backups[0]!), (b) => b!.subarray(0, Math.floor(b!.length / 2)), async () => {
        const v = await validate(backups[0]!.id);
        expect(v.code).toBe(1);
        expect(v.stderr).toMatch(/NOT valid: .*(truncated|fails authentication)/);
      });
      await damaged(artifactKey(backups[1]!), () => null, async () => {
        const v = await validate(backups[1]!.id);
        expect(v.code).toBe(1);
        expect(v.stderr).toMatch(/NOT valid: .*missing/);
        const r = await restore();
        expect(r.code).not.toBe(0);
      });
    });

    test('an altered manifest: listed as unusable, and a restore through it refuses instead of stopping short', async () => {
      await damaged(
        manifestKey(backups[1]!),
        (b) => {
          const envelope = JSON.parse(b!.toString()) as { data: string };
          const sealed = Buffer.from(envelope.data, 'base64');
          sealed[sealed.length - 30] = sealed[sealed.length - 30]! ^ 0x01;
          return Buffer.from(JSON.stringify({ ...envelope, data: sealed.toString('base64') }));
        },
        async () => {
          const listed = await runCli(['backup', 'list', '--cluster', 'test', '--config', config.configPath]);
          expect(listed.stderr).toMatch(new RegExp(`warning: .*${backups[1]!.id} is not used: .*manifest.json: chunk 0 .* fails authentication`));
          const r = await restore();
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(/cannot be read, so the chain may be broken/);
        },
      );
    });
  });
});
