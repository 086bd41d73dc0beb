import { nextBinlogName, planBinlogBackup, restoreChainFor, type PlanInput } from '../../src/domain/chain';
import type { Manifest, ServerIdentity } from '../../src/domain/manifest';

const server: ServerIdentity = { product: 'mariadb', version: '10.11.19', serverId: 1, serverUuid: null, hostname: 'db1', binlogFormat: 'ROW', gtidMode: null };

function manifest(id: string, type: Manifest['type'], extra: Partial<Manifest> = {}): Manifest {
  return {
    formatVersion: 1,
    encryption: null,
    id,
    type,
    cluster: 'c',
    status: 'verified',
    retentionClass: 'routine',
    parentId: null,
    baseFullId: null,
    startedAt: `2026-11-22T${id}:00.000Z`,
    finishedAt: `2026-11-22T${id}:30.000Z`,
    verifiedAt: `2026-11-22T${id}:31.000Z`,
    durationMs: 30000,
    server,
    tool: { name: 'mariadb-dump', version: 'x' },
    databases: ['shop'],
    snapshot: null,
    binlogs: null,
    tables: [],
    objects: { views: [], routines: 0, triggers: 0, events: 0 },
    artifacts: [{ name: 'a', compression: 'zstd', size: 1, sha256: 'a'.repeat(64), rawSize: 1, rawSha256: 'b'.repeat(64) }],
    workflow: { workflowId: 'w', runId: 'r' },
    requestedBy: null,
    reason: null,
    ...extra,
  };
}

const full = manifest('01:00', 'full', { snapshot: { file: 'binlog.000007', position: 900, gtidSet: '0-1-10' } });
const range = (startFile: string, startPosition: number, endFile: string) => ({
  startFile,
  startPosition,
  endFile,
  endPosition: 500,
  files: [startFile, endFile],
  firstEventTime: null,
  lastEventTime: null,
  gtids: [],
  transactions: 1,
});
const incr1 = manifest('02:00', 'incremental', { parentId: full.id, baseFullId: full.id, binlogs: range('binlog.000007', 900, 'binlog.000008') });
const diff = manifest('03:00', 'differential', { parentId: full.id, baseFullId: full.id, binlogs: range('binlog.000007', 900, 'binlog.000009') });
const logs = (from: number, to: number, size = 1000) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ name: `binlog.${String(from + i).padStart(6, '0')}`, size }));

function plan(extra: Partial<PlanInput>) {
  return planBinlogBackup({ type: 'incremental', backups: [full], chain: null, server, binlogs: logs(7, 10), ...extra });
}

describe('planBinlogBackup', () => {
  test('the first incremental starts at the full snapshot and copies every closed binlog since', () => {
    expect(plan({})).toEqual({ action: 'copy', parentId: full.id, baseFullId: full.id, startFile: 'binlog.000007', startPosition: 900, files: logs(7, 9) });
  });

  test('the next incremental starts at the beginning of the file after its parent', () => {
    expect(plan({ backups: [full, incr1] })).toMatchObject({ action: 'copy', parentId: incr1.id, startFile: 'binlog.000009', startPosition: 4, files: logs(9, 9) });
  });

  test('a differential always starts at the full; an incremental after a differential builds on it', () => {
    expect(plan({ type: 'differential', backups: [full, incr1] })).toMatchObject({ parentId: full.id, startFile: 'binlog.000007', files: logs(7, 9) });
    expect(plan({ backups: [full, incr1, diff], binlogs: logs(7, 11) })).toMatchObject({ parentId: diff.id, startFile: 'binlog.000010', files: logs(10, 10) });
  });

  test('no full yet, or a chain broken after the last full: take a full', () => {
    expect(plan({ backups: [] })).toEqual({ action: 'full', reason: 'no full backup to build on yet' });
    const chain = { brokenAt: '2026-11-22T02:30:00.000Z', reason: 'binlogs purged', detectedBy: 'w', lastGoodBackupId: incr1.id };
    expect(plan({ backups: [full, incr1], chain })).toMatchObject({ action: 'full', reason: expect.stringContaining('binlogs purged') });
    const older = { ...chain, brokenAt: '2026-11-22T00:30:00.000Z' };
    expect(plan({ backups: [full, incr1], chain: older })).toMatchObject({ action: 'copy' }); // a newer full healed it
  });

  test('binlogs purged before a backup copied them are taken from the continuous archive when it holds them whole', () => {
    const archived = { timeline: 't20261122T000000Z', files: logs(7, 9, 1200) };
    expect(plan({ backups: [full, incr1], binlogs: logs(10, 12), archived })).toEqual({
      action: 'copy',
      parentId: incr1.id,
      baseFullId: full.id,
      startFile: 'binlog.000009',
      startPosition: 4,
      files: [{ name: 'binlog.000009', size: 1200, archive: 't20261122T000000Z' }, ...logs(10, 11)],
    });
    // The archive lacks a purged file: still a gap.
    const partial = { timeline: 't20261122T000000Z', files: logs(7, 8, 1200) };
    expect(plan({ backups: [full, incr1], binlogs: logs(10, 12), archived: partial })).toMatchObject({ action: 'gap' });
  });

  test('gaps: purged binlogs, another server, a position that went backwards, a missing file', () => {
    expect(plan({ backups: [full, incr1], binlogs: logs(10, 12) })).toEqual({
      action: 'gap',
      reason: `binary logs were purged before they were copied: binlog.000009 is needed after ${incr1.id}, the server's oldest is binlog.000010`,
      lastGoodBackupId: incr1.id,
    });
    expect(plan({ server: { ...server, serverId: 2 } })).toMatchObject({ action: 'gap', reason: expect.stringMatching(/different server identity .*server id 1 became 2/) });
    expect(plan({ backups: [full, incr1], binlogs: logs(1, 3) })).toMatchObject({ action: 'gap', reason: expect.stringMatching(/went backwards/) });
    expect(plan({ binlogs: logs(7, 10, 100) })).toMatchObject({ action: 'gap', reason: expect.stringMatching(/binlog.000007 is 100 bytes/) });
    const holes = [...logs(7, 7), ...logs(9, 10)];
    expect(plan({ binlogs: holes })).toMatchObject({ action: 'gap', reason: 'binary log binlog.000008 is missing on the server' });
  });
});

test('restore chains follow parents back to the full', () => {
  const incr2 = manifest('04:00', 'incremental', { parentId: diff.id, baseFullId: full.id });
  expect(restoreChainFor([full, incr1, diff, incr2], incr2).map((m) => m.id)).toEqual([full.id, diff.id, incr2.id]);
  expect(nextBinlogName('mysql-bin.000999')).toBe('mysql-bin.001000');
});
