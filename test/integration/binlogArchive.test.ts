/**
 * Continuous binlog archiving against the real servers: the stream publishes segments
 * within its flush delay; a pause and resume (a new activity run) continues where the
 * published segments end, with no hole and no transaction twice (a counter that every
 * transaction increments would come out wrong); a point-in-time restore to "latest" uses
 * the archive beyond the last backup and equals the live database; binlogs purged while
 * the archive was paused are reported as a gap and a new timeline starts.
 */
import type { Client } from '@temporalio/client';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { BinlogArchive } from '../../src/repository/binlogArchive';
import { openRepository } from '../../src/repository';
import { makeTestConfig, products, runCli, spawnCliWorker, sqlOn, checksumsOn, temporalClient, withWorker, type TestSetup } from '../harness/context';
import * as path from 'node:path';
import { execSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Segment } from '../../src/domain/binlogArchive';

/** The sequence number of a GTID (MariaDB domain-server-seq, MySQL uuid:n). */
function gtidSeq(id: string): number {
  return Number(id.includes(':') ? id.split(':')[1] : id.split('-')[2]);
}

describe.each(products())('on %s', (product) => {
  const DB = 'archtest';
  let setup: TestSetup;
  let client: Client;
  let closeClient: () => Promise<void>;
  const sql = (query: string, params: unknown[] = []) => sqlOn(product, query, params);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const cli = (...args: string[]) => runCli([...args, '--config', setup.configPath]);

  async function write(label: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await sql(`INSERT INTO ${DB}.ticks (label) VALUES (?)`, [`${label}-${i}`]);
      await sql(`UPDATE ${DB}.counter SET n = n + 1 WHERE id = 1`);
    }
  }

  /** Waits until the archive says it holds every transaction committed before `since` (the status the CLI prints). */
  async function archivedSince(since: string): Promise<{ timeline: string; coveredUntil: string }> {
    for (let i = 0; i < 300; i++) {
      const r = await cli('binlogs', 'status', '--cluster', 'test', '--json');
      const s = JSON.parse(r.stdout) as { archive: { timeline: string; coveredUntil: string | null } | null };
      if (s.archive?.coveredUntil && s.archive.coveredUntil >= since) return { timeline: s.archive.timeline, coveredUntil: s.archive.coveredUntil };
      await sleep(200);
    }
    throw new Error(`the archive never reached ${since}`);
  }

  const nextName = (file: string) => file.replace(/\.(\d+)$/, (_m, n: string) => `.${String(Number(n) + 1).padStart(n.length, '0')}`);

  /** Purges every binlog before `next` (MariaDB keeps a file until its binlog checkpoint has moved on, a moment after the flush). */
  async function purgeTo(next: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await sql(`PURGE BINARY LOGS TO '${next}'`);
      if (String((await sql('SHOW BINARY LOGS'))[0]!.Log_name) === next) break;
      await sleep(100);
    }
    expect(String((await sql('SHOW BINARY LOGS'))[0]!.Log_name)).toBe(next);
  }

  /** Pauses and waits until the stream has stopped (the workflow shows it paused with no run in flight). */
  async function pause(): Promise<void> {
    expect((await cli('binlogs', 'pause', '--cluster', 'test', '--reason', 'test', '--as', 'alice')).code).toBe(0);
    const handle = client.workflow.getHandle('binlog-archive/test');
    for (let i = 0; i < 300; i++) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const s = JSON.parse((await cli('binlogs', 'status', '--cluster', 'test', '--json')).stdout) as { workflow: { paused: boolean } | null };
      if (s.workflow?.paused && pending.length === 0) return;
      await sleep(100);
    }
    throw new Error('the archive did not pause');
  }

  beforeAll(async () => {
    await sql(`DROP DATABASE IF EXISTS ${DB}`);
    await sql(`DROP DATABASE IF EXISTS ${DB}_latest`);
    await sql(`DROP DATABASE IF EXISTS ${DB}_after_gap`);
    await sql(`CREATE DATABASE ${DB}`);
    await sql(`CREATE TABLE ${DB}.ticks (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(40) NOT NULL)`);
    await sql(`CREATE TABLE ${DB}.counter (id INT PRIMARY KEY, n INT NOT NULL)`);
    await sql(`INSERT INTO ${DB}.counter VALUES (1, 0)`);
    setup = makeTestConfig(`binlog-archive-${product}`, {
      databases: [DB],
      product,
      mutate: (raw) => {
        const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        c.binlogArchive = { enabled: true, flushAfter: '1s', runFor: '1h' };
      },
    });
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await closeClient?.();
  });

  it('streams, resumes without a hole or a repeat, restores to latest from the archive, and reports a purge as a gap', async () => {
    await withWorker(setup.config, async () => {
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest', reason: 'archive test' }));
      await write('before-start', 5);
      const apply = await cli('schedules', 'apply', '--json');
      expect(JSON.parse(apply.stdout).create).toContain('binlog-archive/test');

      await write('streaming', 20);
      const first = await archivedSince(new Date().toISOString());

      // Pause (the activity stops), write, resume (a new run starts in the middle of the file).
      await pause();
      await write('while-paused', 10);
      expect((await cli('binlogs', 'resume', '--cluster', 'test', '--as', 'alice')).code).toBe(0);
      await write('after-resume', 10);
      const second = await archivedSince(new Date().toISOString());
      expect(second.timeline).toBe(first.timeline);

      // Latest, past the only backup: the archive carries it, transaction for transaction.
      const restored = await cli('restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', 'latest', '--into', `${DB}_latest`, '--wait', '--json');
      expect(restored.stderr).toBe('');
      const result = JSON.parse(restored.stdout);
      expect(result.plan.chain).toEqual([]);
      expect(result.plan.archive).toMatchObject({ timeline: first.timeline });
      expect(await checksumsOn(product, `${DB}_latest`)).toEqual(await checksumsOn(product, DB));
      const [counter] = await sql(`SELECT n FROM ${DB}_latest.counter`);
      expect(Number(counter!.n)).toBe(45);

      // Binlogs purged before an incremental copied them: the archive holds them whole, so
      // the incremental takes them from there instead of breaking the chain.
      await write('before-purge', 3);
      const [active] = await sql(product === 'mysql' ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS');
      await sql('FLUSH BINARY LOGS');
      const newest = nextName(String(active!.File));
      await archivedSince(new Date().toISOString());
      await purgeTo(newest);
      const inc = await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test', requestedBy: 'jest', reason: 'after a purge' }, new Date(Date.now() + 2000)));
      expect(inc.binlogs!.files).toContain(String(active!.File));
      expect(inc.binlogs!.transactions).toBeGreaterThan(0);
      expect((await cli('backup', 'validate', inc.id)).code).toBe(0);

      // A purge while paused: binlogs the archive has not read are gone.
      await pause();
      await write('lost', 3);
      const [current] = await sql(product === 'mysql' ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS');
      await sql('FLUSH BINARY LOGS');
      await purgeTo(nextName(String(current!.File)));
      await cli('binlogs', 'resume', '--cluster', 'test', '--as', 'alice');
      await write('after-gap', 2);
      const third = await archivedSince(new Date().toISOString());
      expect(third.timeline).not.toBe(first.timeline);
      const repository = openRepository(setup.config);
      const timelines = await new BinlogArchive(repository.storage, 'test').timelines();
      repository.close();
      expect(timelines.map((t) => t.timeline)).toEqual([first.timeline, third.timeline]);
      expect(timelines[1]!.reason).toMatch(/purged before they were archived/);
      expect(timelines[1]!.previous).toBe(first.timeline);

      // After the gap a new full continues with the new timeline.
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest', reason: 'after the gap' }, new Date(Date.now() + 1000)));
      await write('after-new-full', 4);
      await archivedSince(new Date().toISOString());
      const after = JSON.parse((await cli('restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', 'latest', '--into', `${DB}_after_gap`, '--wait', '--json')).stdout);
      expect(after.plan.archive).toMatchObject({ timeline: third.timeline });
      expect(await checksumsOn(product, `${DB}_after_gap`)).toEqual(await checksumsOn(product, DB));

      // The on-call view and the drill measure the RPO from the archive (the seed's 10 minutes, held to 60 s here).
      await write('before-drill', 2);
      await archivedSince(new Date().toISOString());
      const status = JSON.parse((await cli('status', '--json')).stdout);
      expect(status.binlogArchives).toEqual([expect.objectContaining({ cluster: 'test', state: 'streaming', timeline: third.timeline })]);
      expect(status.binlogArchives[0].rpoSeconds).toBeLessThanOrEqual(60);
      const drill = JSON.parse((await cli('drill', 'run', '--cluster', 'test', '--rpo', '60s', '--wait', '--json')).stdout);
      expect(drill.report.passed).toBe(true);
      expect(drill.report.rpo.seconds).toBeLessThanOrEqual(60);

      await cli('binlogs', 'stop', '--cluster', 'test', '--as', 'alice');
      await client.workflow.getHandle('binlog-archive/test').result();

      // repo verify re-reads every archived segment; a flipped byte in one is found and named.
      const clean = JSON.parse((await cli('repo', 'verify', '--cluster', 'test', '--wait', '--json')).stdout);
      expect(clean.clean).toBe(true);
      expect(clean.reports[0].notes.join(' ')).toMatch(/binlog archive: \d+ segment\(s\) in 2 timeline\(s\) re-read/);
      const repoRoot = setup.config.repository.path!;
      const segmentFile = execSync(`find ${JSON.stringify(path.join(repoRoot, 'test', 'binlog-archive'))} -name '*.binlog.zst' -size +1k | sort | head -1`, { encoding: 'utf8' }).trim();
      const bytes = readFileSync(segmentFile);
      const at = Math.floor(bytes.length / 2);
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
      writeFileSync(segmentFile, bytes);
      const damaged = await cli('repo', 'verify', '--cluster', 'test', '--wait', '--json');
      expect(damaged.code).toBe(1);
      const report = JSON.parse(damaged.stdout).reports[0];
      expect(report.problems).toEqual([expect.objectContaining({ class: 'corrupt', key: expect.stringContaining(path.basename(segmentFile)) })]);
    });
  });

  it('SIGKILL of the worker mid-stream: the next worker resumes with no gap and no transaction twice (GTIDs counted)', async () => {
    await sql(`DROP DATABASE IF EXISTS ${DB}_crash`);
    await sql(`UPDATE ${DB}.counter SET n = 0 WHERE id = 1`);
    const first = spawnCliWorker(setup.configPath, path.join(setup.dir, 'worker-1.log'));
    let transactions = 0;
    let timelinesBefore = -1;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        await sql(`INSERT INTO ${DB}.ticks (label) VALUES ('crash'); UPDATE ${DB}.counter SET n = n + 1 WHERE id = 1`);
        transactions += 2;
        await sleep(20);
      }
    })();
    try {
      await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test', requestedBy: 'jest', reason: 'crash test' }, new Date(Date.now() + 5000)));
      expect((await cli('binlogs', 'start', '--cluster', 'test', '--as', 'alice')).code).toBe(0);
      await archivedSince(new Date().toISOString());
      const repository = openRepository(setup.config);
      timelinesBefore = (await new BinlogArchive(repository.storage, 'test').timelines()).length;
      repository.close();
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      await sleep(2000);
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL');
    }
    await withWorker(setup.config, async () => {
      await sleep(2000);
      stop = true;
      await writer;
      const [counter] = await sql(`SELECT n FROM ${DB}.counter`);
      await archivedSince(new Date().toISOString());
      const restored = await cli('restore', 'pitr', '--cluster', 'test', '--database', DB, '--to', 'latest', '--into', `${DB}_crash`, '--wait', '--json');
      expect(restored.stderr).toBe('');
      expect(await checksumsOn(product, `${DB}_crash`)).toEqual(await checksumsOn(product, DB));
      const [again] = await sql(`SELECT n FROM ${DB}_crash.counter`);
      expect(Number(again!.n)).toBe(Number(counter!.n));
      await cli('binlogs', 'stop', '--cluster', 'test', '--as', 'alice');
      await client.workflow.getHandle('binlog-archive/test').result();
    });
    expect(transactions).toBeGreaterThan(0);

    // Every GTID of the newest timeline exactly once, in order, across the crash.
    const repository = openRepository(setup.config);
    const archive = new BinlogArchive(repository.storage, 'test');
    const timelines = await archive.timelines();
    expect(timelines.length).toBe(timelinesBefore); // resumed, not restarted
    const newest = timelines[timelines.length - 1]!;
    const segments: Segment[] = [];
    for (const file of await archive.files(newest.timeline)) segments.push(...(await archive.segments(newest.timeline, file)));
    repository.close();
    const last = new Map<string, number>();
    let counted = 0;
    for (const s of segments) {
      for (const g of s.gtids) {
        const previous = last.get(g.source);
        if (previous !== undefined) expect(gtidSeq(g.first)).toBe(previous + 1);
        last.set(g.source, gtidSeq(g.last));
      }
      counted += s.transactions;
    }
    const span = [...last.keys()].length;
    expect(span).toBeGreaterThan(0);
    expect(counted).toBeGreaterThan(transactions / 2);
  });
});
