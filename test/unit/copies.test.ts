/** Copies: what a copy lacks and in which order, how far behind it is, and what retention must keep for it. */
import { copyLag, notYetCopied, planCopies } from '../../src/domain/copies';
import type { Manifest } from '../../src/domain/manifest';
import { holdBack, type RetentionPlan } from '../../src/domain/retention';

function m(id: string, type: Manifest['type'], parentId: string | null = null, baseFullId: string | null = null): Manifest {
  const at = `2026-11-22T${id}:00.000Z`;
  return {
    formatVersion: 1, encryption: null, id, type, cluster: 'c', status: 'verified', retentionClass: 'routine', parentId, baseFullId,
    startedAt: at, finishedAt: at.replace(':00.000Z', ':30.000Z'), verifiedAt: at, durationMs: 1,
    server: { product: 'mariadb', version: '10.11', serverId: 1, serverUuid: null, hostname: 'h', binlogFormat: 'ROW', gtidMode: null },
    tool: { name: 't', version: '1' }, databases: [], snapshot: null, binlogs: null, tables: [], objects: { views: [], routines: 0, triggers: 0, events: 0 },
    artifacts: [{ name: 'a', compression: 'zstd', size: 10, sha256: 'a'.repeat(64), rawSize: 10, rawSha256: 'b'.repeat(64) }],
    workflow: { workflowId: 'w', runId: 'r' }, requestedBy: null, reason: null,
  };
}

const f1 = m('01:00', 'full');
const i1 = m('02:00', 'incremental', '01:00', '01:00');
const i2 = m('03:00', 'incremental', '02:00', '01:00');
const f2 = m('04:00', 'full');
const i3 = m('05:00', 'incremental', '04:00', '04:00');

test('a copy gets what it lacks, oldest first, each backup after what it builds on', () => {
  expect(planCopies([i2, f2, f1, i3, i1], [])).toEqual({ copy: ['01:00', '02:00', '03:00', '04:00', '05:00'], held: [] });
  expect(planCopies([f1, i1, i2, f2, i3], [f1, i1])).toEqual({ copy: ['03:00', '04:00', '05:00'], held: [] });
});

test('a backup whose parent is in neither repository waits, and says why', () => {
  const plan = planCopies([i2, f2, i3], []);
  expect(plan.copy).toEqual(['04:00', '05:00']);
  expect(plan.held).toEqual([{ id: '03:00', why: '02:00, which it builds on, is in neither repository' }]);
});

test('the lag: how many are missing and how long the oldest has waited', () => {
  const now = new Date('2026-11-22T06:00:00.000Z');
  expect(copyLag([f1, i1, i2], [f1], now)).toEqual({ missing: 2, lagSeconds: 4 * 3600 - 30, oldestMissing: '02:00' });
  expect(copyLag([f1], [f1], now)).toEqual({ missing: 0, lagSeconds: 0, oldestMissing: null });
});

test('retention keeps what a copy does not hold yet, and everything those build on', () => {
  const held = notYetCopied([f1, i1, i2, f2, i3], [[f1, i1, f2, i3]]);
  expect([...held].sort()).toEqual(['01:00', '02:00', '03:00']);
  const plan: RetentionPlan = {
    delete: [f1, i1, i2].map((b) => ({ id: b.id, type: b.type, bytes: 10, reason: 'older than 7 days' })),
    keep: [f2, i3].map((b) => ({ id: b.id, type: b.type, reasons: ['newest full'] })),
    storage: { usedBytes: 50, maxBytes: 100, usedFraction: 0.5, level: 'ok', bytesAfter: 20, fractionAfter: 0.2 },
    needsApproval: false,
    warnings: [],
  };
  const kept = holdBack(plan, held, 'not yet in every copy repository');
  expect(kept.delete).toEqual([]);
  expect(kept.keep.map((k) => k.id)).toEqual(['01:00', '02:00', '03:00', '04:00', '05:00']);
  expect(kept.storage.bytesAfter).toBe(50);
  expect(kept.warnings).toEqual(['3 backup(s) kept although retention would delete them: not yet in every copy repository']);
  expect(holdBack(plan, new Set(), 'x')).toBe(plan);
});
