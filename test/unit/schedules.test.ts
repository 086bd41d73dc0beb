import { parseConfig } from '../../src/config/load';
import { desiredSchedules, planReconcile, DEFAULT_SCHEDULES } from '../../src/domain/schedules';

const base = { timezone: 'UTC', catchupWindow: '10m', defaultsFor: [] as string[], entries: [] as Array<{ cluster: string; action: 'backup-full' | 'backup-incremental' | 'backup-differential'; cron?: string; every?: string }> };

test('seed defaults per cluster; explicit entries override them', () => {
  const d = desiredSchedules({ ...base, defaultsFor: ['shop'], entries: [{ cluster: 'shop', action: 'backup-incremental', cron: '0 * * * *' }] });
  expect(d.map((x) => [x.id, x.cron])).toEqual([
    ['dbops/shop/backup-differential', '0 10,16 * * *'],
    ['dbops/shop/backup-full', '0 2 * * *'],
    ['dbops/shop/backup-incremental', '0 * * * *'],
    ['dbops/shop/drill', '0 4 1 * *'],
    ['dbops/shop/drill-full', '0 5 1 1,4,7,10 *'],
    ['dbops/shop/repo-verify', '0 6 * * 0'],
    ['dbops/shop/retention', '0 3 * * *'],
  ]);
  expect(DEFAULT_SCHEDULES).toHaveLength(7);
  const drillA = desiredSchedules({ ...base, defaultsFor: ['shop'] }, { rpoTarget: '10m' }).find((x) => x.action === 'drill')!;
  const drillB = desiredSchedules({ ...base, defaultsFor: ['shop'] }, { rpoTarget: '1h' }).find((x) => x.action === 'drill')!;
  expect(drillA.hash).not.toBe(drillB.hash); // changed drill targets update the drill schedule
});

test('reconcile: create the missing, update the changed, delete only ours that the config dropped', () => {
  const want = desiredSchedules({ ...base, defaultsFor: ['shop'] });
  const full = want.find((x) => x.action === 'backup-full')!;
  const plan = planReconcile(want, [
    { id: full.id, hash: full.hash },
    { id: 'dbops/shop/backup-incremental', hash: 'stale' },
    { id: 'dbops/old/backup-full', hash: 'x' },
    { id: 'someone-else/job', hash: null },
  ]);
  expect({ create: plan.create.map((x) => x.id), update: plan.update.map((x) => x.id), remove: plan.remove, unchanged: plan.unchanged }).toEqual({
    create: ['dbops/shop/backup-differential', 'dbops/shop/drill', 'dbops/shop/drill-full', 'dbops/shop/repo-verify', 'dbops/shop/retention'],
    update: ['dbops/shop/backup-incremental'],
    remove: ['dbops/old/backup-full'],
    unchanged: ['dbops/shop/backup-full'],
  });
  const changedZone = desiredSchedules({ ...base, timezone: 'Europe/Zurich', defaultsFor: ['shop'] });
  expect(changedZone.find((x) => x.action === 'backup-full')!.hash).not.toBe(full.hash);
});

test('schedule config errors name the field', () => {
  const text = `repository: { path: /r }\nclusters: [{ name: shop, host: h, user: u }]\nschedules:\n  defaultsFor: [nope]\n  entries:\n    - { cluster: shop, action: backup-full }\n    - { cluster: ghost, action: backup-full, every: 1h }\n`;
  expect(() => parseConfig(text, 'x.yaml', '/')).toThrow(/schedules\.entries\[0\]\.cron: give exactly one of cron or every/);
  const fixed = text.replace('{ cluster: shop, action: backup-full }', '{ cluster: shop, action: backup-full, cron: "0 2 * * *" }');
  expect(() => parseConfig(fixed, 'x.yaml', '/')).toThrow(/schedules\.entries\[1\]\.cluster: unknown cluster "ghost"[\s\S]*schedules\.defaultsFor\[0\]: unknown cluster "nope"/);
});
