/**
 * The repository verification activities on a local repository (the integration test does
 * the same on an encrypted S3 one): a backup re-read by id alone, each damage reported as
 * what it is, a backup deleted meanwhile not taken for damage, the orphan walk, the stored
 * report, and inputs that name anything but a cluster and a backup id refused.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { buildActivityDeps } from '../../src/activities';
import { createRepoVerifyActivities, type WorkflowRun } from '../../src/activities/repoVerify';
import { ConfigSchema } from '../../src/config/schema';
import { ManifestSchema, type Artifact, type Manifest } from '../../src/domain/manifest';
import { buildVerifyReport } from '../../src/domain/repoVerify';
import { ClusterLocks, layout, LocalStorage, Repository } from '../../src/repository';

let dir = '';
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'dbops-repo-verify-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const FULL = '20261120T020000.000Z-full';
const INC = '20261120T060000.000Z-incremental';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const file = (key: string) => path.join(dir, ...key.split('/'));

function activities(asked: WorkflowRun[][] = []) {
  const config = ConfigSchema.parse({ repository: { path: dir }, clusters: [{ name: 'shop', host: '127.0.0.1', user: 'dbops' }], temporal: { address: '127.0.0.1:1' } });
  return createRepoVerifyActivities(buildActivityDeps(config, pino({ level: 'silent' })), {
    runsRunning: async (runs) => {
      asked.push(runs);
      return runs.map((r) => (r.workflowId.includes('still') ? true : false));
    },
  });
}

/** A published backup as the backup workflows leave it: gzip artifacts and a manifest that describes them. */
function publish(id: string, parentId: string | null, artifacts: Record<string, string>): { key: string; manifest: Manifest } {
  const key = layout.backupOfId('shop', id);
  mkdirSync(file(key), { recursive: true });
  const described: Artifact[] = Object.entries(artifacts).map(([name, text]) => {
    const raw = Buffer.from(text.repeat(200));
    const stored = gzipSync(raw);
    writeFileSync(file(`${key}/${name}`), stored);
    return { name, compression: 'gzip', size: stored.length, sha256: sha(stored), rawSize: raw.length, rawSha256: sha(raw) };
  });
  const type = id.endsWith('full') ? 'full' : 'incremental';
  const startedAt = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`;
  const manifest = ManifestSchema.parse({
    formatVersion: 1,
    id,
    type,
    cluster: 'shop',
    status: 'verified',
    retentionClass: 'routine',
    parentId,
    baseFullId: parentId,
    startedAt,
    finishedAt: startedAt,
    verifiedAt: startedAt,
    durationMs: 0,
    server: { product: 'mariadb', version: '10.11.19', serverId: 1, serverUuid: null, hostname: 'db1', binlogFormat: 'ROW', gtidMode: null },
    tool: { name: 'mariadb-dump', version: '10.11' },
    databases: ['app'],
    snapshot: null,
    tables: [],
    objects: { views: [], routines: 0, triggers: 0, events: 0 },
    artifacts: described,
    workflow: { workflowId: `backup-${type}/shop/${id}`, runId: 'r' },
    requestedBy: null,
    reason: null,
  });
  writeFileSync(file(layout.manifest(key)), JSON.stringify(manifest));
  return { key, manifest };
}

/** Makes every file under a folder look written `hours` ago. */
function age(key: string, hours: number): void {
  const when = new Date(Date.now() - hours * 3_600_000);
  for (const name of readdirSync(file(key))) utimesSync(path.join(file(key), name), when, when);
}

test('a clean repository: listed, every artifact re-read by backup id alone', async () => {
  const full = publish(FULL, null, { 'dump.sql.gz': 'INSERT INTO t VALUES (1);\n' });
  publish(INC, FULL, { 'binlog.000001.gz': 'binlog one', 'binlog.000002.gz': 'binlog two' });
  const a = activities();
  const listing = await a.listBackupsToVerify({ cluster: 'shop' });
  expect(listing.backups.map((b) => [b.id, b.parentId, b.artifacts])).toEqual([
    [FULL, null, 1],
    [INC, FULL, 2],
  ]);
  expect(listing.repository).toBe(`file://${dir}`);
  expect(await a.verifyBackup({ cluster: 'shop', backupId: FULL })).toEqual({
    id: FULL,
    outcome: 'checked',
    key: full.key,
    artifacts: [{ name: 'dump.sql.gz', key: `${full.key}/dump.sql.gz`, bytesRead: full.manifest.artifacts[0]!.size, missing: false, problems: [] }],
  });
  expect(await a.listVerifyClusters({})).toEqual({ clusters: ['shop'] });
  expect((await a.findOrphans({ cluster: 'shop' })).candidates).toEqual([]);
});

test('a flipped byte, a cut object and a deleted one are each what they are; a backup deleted meanwhile is gone, not damaged', async () => {
  const full = publish(FULL, null, { 'dump.sql.gz': 'INSERT INTO t VALUES (1);\n' });
  const inc = publish(INC, FULL, { 'binlog.000001.gz': 'binlog one', 'binlog.000002.gz': 'binlog two' });
  const dump = file(`${full.key}/dump.sql.gz`);
  const bytes = readFileSync(dump);
  bytes[20] = bytes[20]! ^ 0x10;
  writeFileSync(dump, bytes);
  const cut = file(`${inc.key}/binlog.000001.gz`);
  writeFileSync(cut, readFileSync(cut).subarray(0, 10));
  rmSync(file(`${inc.key}/binlog.000002.gz`));

  const a = activities();
  const flipped = await a.verifyBackup({ cluster: 'shop', backupId: FULL });
  expect(flipped.outcome === 'checked' && flipped.artifacts[0]).toMatchObject({ missing: false, problems: expect.arrayContaining([expect.stringMatching(/^dump\.sql\.gz: sha256 [0-9a-f]{64}, manifest says/)]) });
  const damaged = await a.verifyBackup({ cluster: 'shop', backupId: INC });
  expect(damaged.outcome === 'checked' && damaged.artifacts.map((x) => [x.name, x.missing, x.bytesRead, x.problems[0]])).toEqual([
    ['binlog.000001.gz', false, 10, `binlog.000001.gz: size 10, manifest says ${inc.manifest.artifacts[0]!.size}`],
    ['binlog.000002.gz', true, 0, 'binlog.000002.gz: missing'],
  ]);
  rmSync(file(inc.key), { recursive: true });
  expect(await a.verifyBackup({ cluster: 'shop', backupId: INC })).toEqual({ id: INC, outcome: 'gone' });
});

test('a connection that breaks mid-read is not damage: what reads fine the second time is not reported', async () => {
  const { key } = publish(FULL, null, { 'dump.sql.gz': 'INSERT INTO t VALUES (1);\n' });
  /** The first read of the dump breaks after a few bytes, as a reset connection does. */
  class FlakyStorage extends LocalStorage {
    reads = 0;
    override async openRead(k: string): Promise<Readable> {
      if (!k.endsWith('dump.sql.gz') || this.reads++ > 0) return super.openRead(k);
      const head = readFileSync(file(k)).subarray(0, 16);
      return new Readable({
        read() {
          this.push(head);
          this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
        },
      });
    }
  }
  const storage = new FlakyStorage(dir);
  const config = ConfigSchema.parse({ repository: { path: dir }, clusters: [{ name: 'shop', host: '127.0.0.1', user: 'dbops' }], temporal: { address: '127.0.0.1:1' } });
  const deps = buildActivityDeps(config, pino({ level: 'silent' }), { repository: { storage, catalog: new Repository(storage), locks: new ClusterLocks(storage), reader: () => new Repository(storage), copies: () => [], copy: (name: string) => { throw new Error(`no copy ${name}`); }, close: () => undefined } });
  const found = await createRepoVerifyActivities(deps).verifyBackup({ cluster: 'shop', backupId: FULL });
  expect(storage.reads).toBe(2);
  expect(found).toMatchObject({ outcome: 'checked', artifacts: [{ key: `${key}/dump.sql.gz`, missing: false, problems: [] }] });
});

test('an altered manifest: listed as unusable, and so when the backup is read again', async () => {
  const { key } = publish(FULL, null, { 'dump.sql.gz': 'x' });
  writeFileSync(file(layout.manifest(key)), '{"formatVersion": 1, "id": "tampered"}');
  const a = activities();
  const listing = await a.listBackupsToVerify({ cluster: 'shop' });
  expect(listing.backups).toEqual([]);
  expect(listing.unusable).toEqual([{ key, problem: `${key}/manifest.json: not a valid manifest` }]);
  expect(await a.verifyBackup({ cluster: 'shop', backupId: FULL })).toEqual({ id: FULL, outcome: 'unusable', key, problem: `${key}/manifest.json: not a valid manifest` });
});

test('the orphan walk: unlisted objects, folders without a manifest, staging and trash with their age and owner, stray names', async () => {
  const { key } = publish(FULL, null, { 'dump.sql.gz': 'x' });
  writeFileSync(file(`${key}/left-behind.bin`), 'x');
  // An object store's move that stopped before the manifest was copied.
  const unpublished = layout.backupOfId('shop', '20261119T020000.000Z-full');
  mkdirSync(file(unpublished), { recursive: true });
  writeFileSync(file(`${unpublished}/dump.sql.gz`), 'x');
  age(unpublished, 48);
  const ended = layout.staging('shop', '20261118T020000.000Z-full');
  const running = layout.staging('shop', '20261122T020000.000Z-full');
  for (const [stagingKey, workflowId] of [
    [ended, 'backup-full/shop/ended'],
    [running, 'backup-full/shop/still-running'],
  ] as const) {
    mkdirSync(file(stagingKey), { recursive: true });
    writeFileSync(file(`${stagingKey}/.owner.json`), JSON.stringify({ workflowId, runId: 'r' }));
    writeFileSync(file(`${stagingKey}/dump.sql.gz`), 'x');
  }
  age(ended, 30);
  mkdirSync(file('shop/full/not-a-day'), { recursive: true });
  const trash = layout.trash('shop', '20261001T020000.000Z-full');
  mkdirSync(file(trash), { recursive: true });
  writeFileSync(file(`${trash}/dump.sql.gz`), 'x');
  age(trash, 72);
  const asked: WorkflowRun[][] = [];

  const { candidates } = await activities(asked).findOrphans({ cluster: 'shop' });
  expect(asked).toEqual([[{ workflowId: 'backup-full/shop/ended', runId: 'r' }, { workflowId: 'backup-full/shop/still-running', runId: 'r' }]]);
  expect(candidates.map((c) => ({ ...c, ...('newest' in c && c.newest !== null ? { newest: Math.round((Date.now() - Date.parse(c.newest)) / 3_600_000) } : {}) }))).toEqual([
    { kind: 'unpublished', key: unpublished, backupId: '20261119T020000.000Z-full', newest: 48 },
    { kind: 'unlisted-object', key: `${key}/left-behind.bin`, backupId: FULL },
    { kind: 'stray', key: 'shop/full/not-a-day', newest: 0 },
    { kind: 'staging', key: ended, backupId: '20261118T020000.000Z-full', newest: 30, owner: { workflowId: 'backup-full/shop/ended', runId: 'r' }, ownerRunning: false },
    { kind: 'staging', key: running, backupId: '20261122T020000.000Z-full', newest: 0, owner: { workflowId: 'backup-full/shop/still-running', runId: 'r' }, ownerRunning: true },
    { kind: 'trash', key: trash, backupId: '20261001T020000.000Z-full', newest: 72 },
  ]);
});

test('the report is stored under the cluster and read back as the newest', async () => {
  const a = activities();
  const listing = await a.listBackupsToVerify({ cluster: 'shop' });
  const run = { startedAt: new Date('2026-11-22T06:00:00Z'), finishedAt: new Date('2026-11-22T06:01:00Z'), requestedBy: null, workflow: { workflowId: 'w', runId: 'r' } };
  const older = buildVerifyReport({ listing, findings: [], orphans: [] }, { ...run, runKey: '20261115T060000Z' });
  const newer = buildVerifyReport({ listing, findings: [], orphans: [{ kind: 'stray', key: 'shop/x', newest: null }] }, { ...run, runKey: '20261122T060000Z' });
  expect(await a.storeVerifyReport({ report: newer })).toEqual({ key: path.join(dir, 'shop', 'verify', '20261122T060000Z.json') });
  await a.storeVerifyReport({ report: older });
  const { catalog } = buildActivityDeps(ConfigSchema.parse({ repository: { path: dir }, clusters: [{ name: 'shop', host: 'h', user: 'u' }] }), pino({ level: 'silent' })).repository;
  expect(await catalog.latestVerifyReport('shop')).toEqual(newer);
});

test('inputs name a configured cluster and a backup id, nothing else', async () => {
  const a = activities();
  await expect(a.verifyBackup({ cluster: 'shop', backupId: '../../etc/passwd' })).rejects.toMatchObject({ type: 'InvalidInput' });
  await expect(a.verifyBackup({ cluster: 'shop', backupId: FULL, path: '/etc' } as never)).rejects.toMatchObject({ type: 'InvalidInput' });
  await expect(a.findOrphans({ cluster: '../shop' })).rejects.toMatchObject({ type: 'InvalidInput' });
  await expect(a.listBackupsToVerify({ cluster: 'ghost' })).rejects.toThrow(/ghost/);
  await expect(a.storeVerifyReport({ report: { cluster: 'shop' } })).rejects.toMatchObject({ type: 'InvalidInput' });
});
