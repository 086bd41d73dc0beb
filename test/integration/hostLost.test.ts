/**
 * "Host lost": a private primary with a full backup and the continuous binlog archive
 * running; the test writes rows at a steady rate and records each commit; at K it
 * SIGKILLs the primary and deletes its datadir. Then `dbops restore instance --onto
 * standby --to latest` (alice asks, bob approves) brings every database up on another
 * server. Every restored row must be one the test saw committed, with no hole, the
 * tables untouched since the backup must checksum as on the source, and the newest
 * restored commit must be at most 60 s before K. The loss is printed in seconds and rows.
 */
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { approvalState, decide } from '../../src/client/restores';
import { createBackupUser, createRestoreUser, seedSampleDatabase } from '../../src/dev/sampleData';
import { asPerson, harness, makeTestConfig, products, rootConnectionTo, runCli, scratchServer, tableChecksums, temporalClient, withWorker, type TestSetup } from '../harness/context';
import type { LocalServer } from '../../src/mysql/servers/local';
import type { LoadTarget } from '../harness/context';
import type { Product } from '../../src/domain/manifest';
import { openRepository } from '../../src/repository';
import { BinlogArchive } from '../../src/repository/binlogArchive';

/** Each product with the repository on the worker's disk, and in an encrypted bucket (the off-site case). */
const cases = products().flatMap((p) => [
  [p, 'local'],
  [p, 's3'],
] as Array<[Product, 'local' | 's3']>);

describe.each(cases)('on %s, repository %s', (product, where) => {
  const DB = 'shop';
  let primary: LoadTarget & LocalServer;
  let standby: LoadTarget & LocalServer;
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    const base = path.join(harness().baseDir, `host-lost-${product}-${where}`);
    const ids = { mariadb: 51, mysql: 61 }[product] + (where === 's3' ? 4 : 0);
    primary = await scratchServer(product, path.join(base, 'primary'), ids);
    standby = await scratchServer(product, path.join(base, 'standby'), ids + 1);
    const password = `pw-${Math.random().toString(36).slice(2)}`;
    const passwordFile = path.join(base, 'dbops.password');
    const restoreFile = path.join(base, 'dbops_restore.password');
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    writeFileSync(restoreFile, password + '-r\n', { mode: 0o600 });
    const conn = await rootConnectionTo(primary);
    await createBackupUser(conn, 'dbops', password, '%', product);
    await createRestoreUser(conn, 'dbops_restore', password + '-r');
    await seedSampleDatabase(conn, { database: DB, customers: 30, orders: 300 });
    await conn.query(`CREATE TABLE ${DB}.ticks (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(40) NOT NULL)`);
    await conn.end();
    setup = makeTestConfig(`host-lost-${product}-${where}`, {
      databases: [DB],
      product,
      ...(where === 's3' ? { s3: true as const, encrypted: true as const } : {}),
      mutate: (raw) => {
        const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        Object.assign(c, { host: '127.0.0.1', port: primary.port, password: { file: passwordFile }, restorePassword: { file: restoreFile } });
        c.approvers = { 'restore-instance': ['alice', 'bob'] };
        c.binlogArchive = { enabled: true, flushAfter: '2s' };
        raw.restoreTargets = [
          product === 'mysql'
            ? { name: 'standby', host: '127.0.0.1', port: standby.port, user: 'root' }
            : { name: 'standby', socket: standby.socket, user: 'root' },
        ];
      },
    });
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await closeClient?.();
    await standby?.stop().catch(() => undefined);
    await primary?.stop().catch(() => undefined);
  });

  it('loses at most the last 60 s when the primary and its datadir are gone', async () => {
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest', reason: 'host lost' }));
      const before = await rootConnectionTo(primary);
      const untouched = await tableChecksums(before, DB);
      delete untouched.ticks;
      await before.end();
      expect((await runCli(['schedules', 'apply', '--config', setup.configPath])).code).toBe(0);

      // A steady writer: one committed row every 50 ms; what the client saw committed, in order.
      const committed: Array<{ id: number; label: string; at: number }> = [];
      const writer = await rootConnectionTo(primary);
      const started = Date.now();
      let stop = false;
      const writing = (async () => {
        for (let i = 0; !stop; i++) {
          try {
            const label = `tick-${i}`;
            const [r] = await writer.query(`INSERT INTO ${DB}.ticks (label) VALUES (?)`, [label]);
            committed.push({ id: (r as { insertId: number }).insertId, label, at: Date.now() });
          } catch {
            return; // the server is gone
          }
          await sleep(50);
        }
      })();
      await sleep(8000);

      // K: the host is lost.
      const K = Date.now();
      process.kill(primary.pid, 'SIGKILL');
      rmSync(primary.datadir, { recursive: true, force: true });
      stop = true;
      await writing;
      writer.destroy();
      expect(committed.length).toBeGreaterThan(50);

      // Alice asks for the instance on the standby; bob approves.
      const run = runCli(['restore', 'instance', '--cluster', 'test', '--onto', 'standby', '--to', 'latest', '--wait', '--json', '--as', 'alice', '--config', setup.configPath]);
      let workflowId: string | null = null;
      for (let i = 0; i < 600 && !workflowId; i++) {
        for await (const wf of client.workflow.list({ query: `WorkflowType = 'instanceRestoreWorkflow' AND ExecutionStatus = 'Running'` })) {
          if (wf.taskQueue === setup.config.temporal.taskQueue) workflowId = wf.workflowId;
        }
        if (!workflowId) await sleep(200);
      }
      expect(workflowId).not.toBeNull();
      for (let i = 0; i < 600; i++) {
        if ((await approvalState(client, workflowId!).catch(() => null))?.status === 'pending') break;
        await sleep(200);
      }
      await asPerson('bob', (bob) => decide(bob, workflowId!, 'approve', 'bob', 'primary lost; bringing up the standby'));
      const result = await run;
      expect(result.stderr).toBe('');
      const restored = JSON.parse(result.stdout);
      expect(restored.plan.plans[0].archive).not.toBeNull();

      const conn = await rootConnectionTo(standby);
      const [rows] = await conn.query(`SELECT id, label FROM ${DB}.ticks ORDER BY id`);
      const got = rows as Array<{ id: number; label: string }>;
      // Every restored row is a committed one, in order, with no hole; nothing after the last.
      expect(got).toEqual(committed.slice(0, got.length).map(({ id, label }) => ({ id, label })));
      const lastRestored = committed[got.length - 1];
      const lossRows = committed.length - got.length;
      const lossSeconds = lastRestored ? (K - lastRestored.at) / 1000 : (K - started) / 1000;
      console.log(`host lost (${product}, repository ${where}): ${got.length} of ${committed.length} committed rows restored; lost ${lossRows} row(s), the newest restored commit ${lossSeconds.toFixed(2)} s before the kill`);
      expect(lossSeconds).toBeLessThanOrEqual(60);
      const standbySums = await tableChecksums(conn, DB);
      delete standbySums.ticks;
      expect(standbySums).toEqual(untouched);
      await conn.end();

      // The standby may be in use by now: restoring onto it again needs --replace.
      const again = await runCli(['restore', 'instance', '--cluster', 'test', '--onto', 'standby', '--to', 'latest', '--dry-run', '--as', 'alice', '--config', setup.configPath]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/already holds shop .*pass --replace/);

      await runCli(['binlogs', 'stop', '--cluster', 'test', '--as', 'alice', '--config', setup.configPath]);
      await client.workflow.getHandle('binlog-archive/test').result().catch(() => undefined);
    });

    // The standby becomes the primary: the same cluster, another server. The archive cannot
    // continue the old stream there; it says so (a gap, an alert) and starts a new timeline.
    const promoted = makeTestConfig(`host-lost-promoted-${product}-${where}`, {
      databases: [DB],
      product,
      ...(where === 's3' && setup.keyFile ? { s3: { prefix: setup.config.repository.s3!.prefix }, encrypted: { keyFile: setup.keyFile } } : {}),
      mutate: (raw) => {
        const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        for (const k of ['password', 'restoreUser', 'restorePassword', 'host', 'port']) delete c[k];
        Object.assign(c, product === 'mysql' ? { host: '127.0.0.1', port: standby.port, user: 'root' } : { socket: standby.socket, user: 'root' });
        c.binlogArchive = { enabled: true, flushAfter: '2s' };
        if (where === 'local') (raw.repository as Record<string, unknown>).path = setup.config.repository.path;
      },
    });
    await withWorker(promoted.config, async () => {
      expect((await runCli(['binlogs', 'start', '--cluster', 'test', '--as', 'alice', '--config', promoted.configPath])).code).toBe(0);
      const repository = openRepository(promoted.config);
      const archive = new BinlogArchive(repository.storage, 'test');
      let timelines = await archive.timelines();
      for (let i = 0; i < 300 && timelines.length < 2; i++) {
        await sleep(200);
        timelines = await archive.timelines();
      }
      repository.close();
      expect(timelines).toHaveLength(2);
      expect(timelines[1]!.reason).toMatch(/^another server: /);
      expect(timelines[1]!.previous).toBe(timelines[0]!.timeline);
      await runCli(['binlogs', 'stop', '--cluster', 'test', '--as', 'alice', '--config', promoted.configPath]);
      await client.workflow.getHandle('binlog-archive/test').result();
    });
  });
});
