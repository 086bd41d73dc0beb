/**
 * deleteBackups holds every deletion back while a restore or drill of the cluster runs, or
 * when Temporal cannot say (the lookup is injected here; the integration test asks a real
 * Temporal).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { createRetentionActivities, readersQuery } from '../../src/activities/retention';
import { buildActivityDeps } from '../../src/activities';
import { ConfigSchema } from '../../src/config/schema';

let dir = '';
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'dbops-retention-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const activities = (runningReaders: (cluster: string) => Promise<string[]>) =>
  createRetentionActivities(
    buildActivityDeps(
      ConfigSchema.parse({ repository: { path: dir }, clusters: [{ name: 'shop', host: '127.0.0.1', user: 'dbops' }], temporal: { address: '127.0.0.1:1' } }),
      pino({ level: 'silent' }),
    ),
    { runningReaders },
  );

test('the visibility query: this cluster, restores and drills, running', () => {
  expect(readersQuery('shop')).toBe("DbopsCluster = 'shop' AND DbopsOperation IN ('restore', 'drill') AND ExecutionStatus = 'Running'");
});

test('a running restore or drill: nothing deleted, every id skipped with the run that holds it', async () => {
  const asked: string[] = [];
  const r = await activities(async (cluster) => {
    asked.push(cluster);
    return ['restore-pitr/shop/shop/20261122T140000Z'];
  }).deleteBackups({ cluster: 'shop', ids: ['20261101T020000.000Z-full', '20261101T060000.000Z-incremental'] });
  expect(asked).toEqual(['shop']);
  const why = 'restore/drill restore-pitr/shop/shop/20261122T140000Z is running; retention tries again on its next run';
  expect(r).toMatchObject({ deleted: [], blockedBy: why, skipped: [{ id: '20261101T020000.000Z-full', why }, { id: '20261101T060000.000Z-incremental', why }] });
  expect(r.storageAfter.usedBytes).toBe(0);
});

test('Temporal cannot be asked: nothing deleted (safe side), and the reason says so', async () => {
  const r = await activities(async () => {
    throw new Error('Failed to connect before the deadline');
  }).deleteBackups({ cluster: 'shop', ids: ['20261101T020000.000Z-full'] });
  expect(r.deleted).toEqual([]);
  expect(r.skipped).toEqual([
    {
      id: '20261101T020000.000Z-full',
      why: 'cannot ask Temporal at 127.0.0.1:1 whether a restore or drill of shop is running (Failed to connect before the deadline); nothing deleted, retention tries again on its next run',
    },
  ]);
});

test('nothing running: the fresh plan decides (here: nothing is selected any more)', async () => {
  const r = await activities(async () => []).deleteBackups({ cluster: 'shop', ids: ['20261101T020000.000Z-full'] });
  expect(r).toMatchObject({ deleted: [], blockedBy: null, skipped: [{ id: '20261101T020000.000Z-full', why: expect.stringMatching(/^no longer selected by retention/) }] });
});
