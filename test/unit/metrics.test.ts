import { DbopsMetrics } from '../../src/metrics/metrics';
import type { Manifest } from '../../src/domain/manifest';

const manifest = (id: string, type: Manifest['type'], finishedAt: string, size: number, rawSize: number, durationMs: number) =>
  ({ id, type, finishedAt, durationMs, artifacts: [{ name: 'a', compression: 'zstd', size, sha256: '0'.repeat(64), rawSize, rawSha256: '0'.repeat(64) }] }) as unknown as Manifest;

test('counters exist at 0 from the start; gauges come from the newest backup of each type', async () => {
  const m = new DbopsMetrics();
  m.initialise(['shop']);
  m.backupFinished('shop', 'full', 'success', 42);
  m.fromCatalog(
    'shop',
    [manifest('f1', 'full', '2026-11-20T02:05:00.000Z', 100, 1000, 300_000), manifest('f2', 'full', '2026-11-21T02:04:00.000Z', 200, 1000, 240_000), manifest('i1', 'incremental', '2026-11-21T06:00:00.000Z', 50, 100, 5_000)],
    10_000,
  );
  const text = await m.registry.metrics();
  expect(text).toContain('dbops_backup_runs_total{cluster="shop",type="full",outcome="success"} 1');
  expect(text).toContain('dbops_backup_runs_total{cluster="shop",type="differential",outcome="failure"} 0');
  expect(text).toContain('dbops_backup_runs_total{cluster="shop",type="incremental",outcome="skipped"} 0');
  expect(text).toContain('dbops_backup_checksum_mismatch_total{cluster="shop"} 0');
  expect(text).toContain(`dbops_backup_last_success_timestamp_seconds{cluster="shop",type="full"} ${Date.parse('2026-11-21T02:04:00.000Z') / 1000}`);
  expect(text).toContain('dbops_backup_last_duration_seconds{cluster="shop",type="full"} 240');
  expect(text).toContain('dbops_backup_size_bytes{cluster="shop",type="full"} 200');
  expect(text).toContain('dbops_backup_compression_saving_ratio{cluster="shop",type="full"} 0.8');
  expect(text).toContain('dbops_repository_used_bytes{cluster="shop"} 350');
  expect(text).toContain('dbops_repository_limit_bytes{cluster="shop"} 10000');
  expect(text).toContain('dbops_backup_duration_seconds_bucket{le="60",cluster="shop",type="full"} 1');
});

test('the latest repository verification: when it finished and what it found, per class', async () => {
  const m = new DbopsMetrics();
  m.fromVerify('shop', null);
  expect(await m.registry.metrics()).not.toContain('dbops_repository_verify_last_timestamp_seconds{');
  m.fromVerify('shop', { finishedAt: '2026-11-22T06:10:00.000Z', counts: { corrupt: 2, missing: 1, 'unusable-manifest': 0, chain: 1, orphaned: 3 }, unverified: [{ backupId: '20261120T020000.000Z-full', reason: 'x' }] });
  const text = await m.registry.metrics();
  expect(text).toContain(`dbops_repository_verify_last_timestamp_seconds{cluster="shop"} ${Date.parse('2026-11-22T06:10:00.000Z') / 1000}`);
  expect(text).toContain('dbops_repository_verify_problems{cluster="shop",class="corrupt"} 2');
  expect(text).toContain('dbops_repository_verify_problems{cluster="shop",class="unusable-manifest"} 0');
  expect(text).toContain('dbops_repository_verify_problems{cluster="shop",class="orphaned"} 3');
  expect(text).toContain('dbops_repository_verify_problems{cluster="shop",class="unverified"} 1');
});
