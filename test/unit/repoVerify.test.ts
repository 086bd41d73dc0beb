/**
 * What a repository verification makes of what it found: each problem in its class, the
 * grace period for things a run may still be writing, severity, and the alert.
 */
import {
  buildVerifyReport,
  chainProblems,
  orphanProblems,
  ORPHAN_GRACE_MS,
  RepoVerifyReportSchema,
  verifyAlert,
  type BackupFinding,
  type ListedBackup,
  type OrphanCandidate,
  type VerifyListing,
} from '../../src/domain/repoVerify';

const NOW = new Date('2026-11-22T06:30:00.000Z');
const HOUR = 3_600_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

const FULL = '20261120T020000.000Z-full';
const INC1 = '20261120T060000.000Z-incremental';
const INC2 = '20261120T100000.000Z-incremental';
const key = (id: string) => `shop/${id.split('-')[1]}/2026-11-20/${id}`;

function listed(id: string, parentId: string | null, bytes = 1000): ListedBackup {
  return { id, type: id.endsWith('full') ? 'full' : 'incremental', parentId, key: key(id), artifacts: 1, bytes };
}

function listing(backups: ListedBackup[], unusable: VerifyListing['unusable'] = []): VerifyListing {
  return { cluster: 'shop', repository: 's3://bucket/dbops (encrypted, key k1)', backups, unusable };
}

function good(id: string, bytes = 1000): BackupFinding {
  const name = id.endsWith('full') ? 'dump.sql.zst' : 'binlog.000001.zst';
  return { id, outcome: 'checked', key: key(id), artifacts: [{ name, key: `${key(id)}/${name}`, bytesRead: bytes, missing: false, problems: [] }] };
}

const RUN = {
  runKey: '20261122T060000Z',
  startedAt: new Date('2026-11-22T06:00:00.000Z'),
  finishedAt: NOW,
  requestedBy: 'schedule dbops/shop/repo-verify',
  workflow: { workflowId: 'repo-verify/shop/scheduled-2026-11-22T06:00:00Z', runId: 'r1' },
};

test('everything re-read and nothing else there: clean, info, the bytes and counts of what was read', () => {
  const r = buildVerifyReport({ listing: listing([listed(FULL, null, 5000), listed(INC1, FULL, 300)]), findings: [good(FULL, 5000), good(INC1, 300)], orphans: [] }, RUN);
  expect(r).toMatchObject({ clean: true, severity: 'info', backupsChecked: 2, artifactsChecked: 2, bytesRead: 5300, problems: [], unverified: [], notes: [] });
  expect(r.counts).toEqual({ corrupt: 0, missing: 0, 'unusable-manifest': 0, chain: 0, orphaned: 0 });
  expect(RepoVerifyReportSchema.parse(r)).toEqual(r);
  const alert = verifyAlert(r, 'shop/verify/20261122T060000Z.json');
  expect(alert).toMatchObject({ severity: 'info', event: 'repository-verify', cluster: 'shop' });
  expect(alert.message).toMatch(/^repository verify of shop: clean; 2 backup\(s\), 2 artifact\(s\), 5\.2 KiB re-read in s3:\/\/bucket\/dbops/);
  expect(alert.message).toMatch(/report: shop\/verify\/20261122T060000Z\.json$/);
});

test('each damage in its class: corrupt, missing, unusable manifest, chain, orphaned; critical', () => {
  const flipped: BackupFinding = {
    id: FULL,
    outcome: 'checked',
    key: key(FULL),
    artifacts: [{ name: 'dump.sql.zst', key: `${key(FULL)}/dump.sql.zst`, bytesRead: 5000, missing: false, problems: [`${key(FULL)}/dump.sql.zst: chunk 0 (from plaintext byte 0) fails authentication`] }],
  };
  const cut: BackupFinding = {
    id: INC1,
    outcome: 'checked',
    key: key(INC1),
    artifacts: [
      { name: 'binlog.000002.zst', key: `${key(INC1)}/binlog.000002.zst`, bytesRead: 100, missing: false, problems: ['binlog.000002.zst: size 100, manifest says 300', 'binlog.000002.zst: sha256 00, manifest says ff'] },
      { name: 'binlog.000003.zst', key: `${key(INC1)}/binlog.000003.zst`, bytesRead: 0, missing: true, problems: ['binlog.000003.zst: missing'] },
    ],
  };
  const unusableKey = key(INC2);
  const r = buildVerifyReport(
    {
      // INC2's manifest fails authentication: it is not listed as a backup, and whatever builds on it has no parent.
      listing: listing([listed(FULL, null), listed(INC1, FULL), listed('20261120T140000.000Z-incremental', INC2)], [{ key: unusableKey, problem: `${unusableKey}/manifest.json: chunk 0 fails authentication` }]),
      findings: [flipped, cut, good('20261120T140000.000Z-incremental')],
      orphans: [{ kind: 'unlisted-object', key: `${key(FULL)}/stray.bin`, backupId: FULL }],
    },
    RUN,
  );
  expect(r.problems.map((p) => [p.class, p.key, p.backupId])).toEqual([
    ['unusable-manifest', unusableKey, INC2],
    ['corrupt', `${key(FULL)}/dump.sql.zst`, FULL],
    ['corrupt', `${key(INC1)}/binlog.000002.zst`, INC1],
    ['missing', `${key(INC1)}/binlog.000003.zst`, INC1],
    ['chain', key('20261120T140000.000Z-incremental'), '20261120T140000.000Z-incremental'],
    ['orphaned', `${key(FULL)}/stray.bin`, FULL],
  ]);
  expect(r.problems[1]!.detail).toBe('chunk 0 (from plaintext byte 0) fails authentication');
  expect(r.problems[2]!.detail).toBe('binlog.000002.zst: size 100, manifest says 300; binlog.000002.zst: sha256 00, manifest says ff');
  expect(r.problems[4]!.detail).toMatch(/its parent 20261120T100000\.000Z-incremental has a manifest that cannot be used/);
  expect(r.counts).toEqual({ corrupt: 2, missing: 1, 'unusable-manifest': 1, chain: 1, orphaned: 1 });
  expect(r).toMatchObject({ clean: false, severity: 'critical' });
  expect(RepoVerifyReportSchema.parse(r)).toEqual(r);
  const alert = verifyAlert(r, 'shop/verify/20261122T060000Z.json');
  expect(alert.severity).toBe('critical');
  expect(alert.message.split('\n')[0]).toMatch(/BACKUPS CANNOT BE RESTORED AS THEY ARE: 2 corrupt, 1 missing, 1 unusable manifest, 1 chain, 1 orphaned/);
  expect(alert.message).toMatch(/\n… and 1 more\nreport: /);
});

test('a chain whose parent is simply not there', () => {
  expect(chainProblems({ backups: [listed(INC1, FULL)], unusable: [] })).toEqual([
    { class: 'chain', key: key(INC1), backupId: INC1, detail: `its parent ${FULL} is not in the repository: ${INC1} and the backups built on it cannot be restored` },
  ]);
  expect(chainProblems({ backups: [listed(FULL, null), listed(INC1, FULL)], unusable: [] })).toEqual([]);
});

test('orphans: leftovers are judged only once older than the grace period, and staging only when its run has ended', () => {
  const old = ago(ORPHAN_GRACE_MS + HOUR);
  const young = ago(HOUR);
  const run = { workflowId: 'backup-full/shop/20261120T020000.000Z', runId: 'r' };
  const candidates: OrphanCandidate[] = [
    { kind: 'unpublished', key: 'shop/full/2026-11-19/20261119T020000.000Z-full', backupId: '20261119T020000.000Z-full', newest: old },
    { kind: 'unpublished', key: 'shop/full/2026-11-22/20261122T020000.000Z-full', backupId: '20261122T020000.000Z-full', newest: young },
    { kind: 'unpublished', key: 'shop/full/2026-11-18/20261118T020000.000Z-full', backupId: '20261118T020000.000Z-full', newest: null },
    { kind: 'staging', key: 'shop/.staging/20261101T020000.000Z-full', backupId: '20261101T020000.000Z-full', newest: old, owner: run, ownerRunning: false },
    { kind: 'staging', key: 'shop/.staging/20261102T020000.000Z-full', backupId: '20261102T020000.000Z-full', newest: old, owner: run, ownerRunning: true },
    { kind: 'staging', key: 'shop/.staging/20261103T020000.000Z-full', backupId: '20261103T020000.000Z-full', newest: old, owner: run, ownerRunning: null },
    { kind: 'staging', key: 'shop/.staging/20261104T020000.000Z-full', backupId: '20261104T020000.000Z-full', newest: old, owner: null, ownerRunning: null },
    { kind: 'staging', key: 'shop/.staging/20261122T050000.000Z-full', backupId: '20261122T050000.000Z-full', newest: young, owner: run, ownerRunning: false },
    { kind: 'trash', key: 'shop/.trash/20261001T020000.000Z-full', backupId: '20261001T020000.000Z-full', newest: old },
    { kind: 'stray', key: 'shop/full/"not a day"', newest: null },
    { kind: 'stray', key: 'shop/full/index.json.tmp-4242-0a1b2c3d', newest: young },
  ];
  const { problems, notes } = orphanProblems(candidates, NOW);
  expect(problems.map((p) => [p.key, p.detail.replace(old, 'OLD')])).toEqual([
    ['shop/full/2026-11-19/20261119T020000.000Z-full', 'a backup folder without a manifest (an interrupted move or a lost manifest), last written OLD'],
    ['shop/.staging/20261101T020000.000Z-full', `a staging folder whose run ${run.workflowId} has ended, last written OLD`],
    ['shop/.staging/20261104T020000.000Z-full', 'a staging folder of no known run, last written OLD'],
    ['shop/.trash/20261001T020000.000Z-full', 'remains of deleted backup 20261001T020000.000Z-full, last written OLD'],
    ['shop/full/"not a day"', 'not a name dbops gives anything in this folder'],
  ]);
  expect(problems.every((p) => p.class === 'orphaned')).toBe(true);
  expect(notes).toEqual([
    `shop/.staging/20261103T020000.000Z-full: Temporal could not say whether its run ${run.workflowId} still runs; not judged`,
    '3 object(s) or folder(s) outside the catalog written in the last 24 h not judged: a run may still be writing them',
  ]);
});

test('only leftovers: a warning, not clean; a backup whose check failed: not clean either; one deleted meanwhile: a note', () => {
  const leftovers = buildVerifyReport({ listing: listing([listed(FULL, null)]), findings: [good(FULL)], orphans: [{ kind: 'stray', key: 'shop/.staging/junk', newest: ago(ORPHAN_GRACE_MS * 2) }] }, RUN);
  expect(leftovers).toMatchObject({ clean: false, severity: 'warning', counts: { orphaned: 1 } });
  expect(verifyAlert(leftovers, 'k').message).toMatch(/^repository verify of shop: problems found: 1 orphaned;/);

  const failed = buildVerifyReport(
    { listing: listing([listed(FULL, null), listed(INC1, FULL)]), findings: [{ id: FULL, outcome: 'unverified', reason: 'cannot reach s3://bucket' }, { id: INC1, outcome: 'gone' }], orphans: [] },
    RUN,
  );
  expect(failed).toMatchObject({ clean: false, severity: 'warning', backupsChecked: 0, problems: [], unverified: [{ backupId: FULL, reason: 'cannot reach s3://bucket' }] });
  expect(failed.notes).toEqual(['1 backup(s) left the catalog while the run went on (retention) and were not checked']);
  // INC1's parent is not verified, not missing: no chain problem. One whose parent is missing but that left meanwhile: none either.
  const leftMeanwhile = buildVerifyReport({ listing: listing([listed(INC1, FULL)]), findings: [{ id: INC1, outcome: 'gone' }], orphans: [] }, RUN);
  expect(leftMeanwhile).toMatchObject({ clean: true, problems: [] });
  expect(verifyAlert(failed, 'k').message).toMatch(/1 backup\(s\) not verified[\s\S]*\nnot verified: 20261120T020000\.000Z-full: cannot reach s3:\/\/bucket\n/);
});

test('a manifest that became unusable between listing and reading is reported as such', () => {
  const r = buildVerifyReport({ listing: listing([listed(FULL, null)]), findings: [{ id: FULL, outcome: 'unusable', key: key(FULL), problem: 'manifest.json: not a valid manifest' }], orphans: [] }, RUN);
  expect(r.problems).toEqual([{ class: 'unusable-manifest', key: key(FULL), backupId: FULL, detail: 'manifest.json: not a valid manifest' }]);
  expect(r.severity).toBe('critical');
});

test('long details are clipped to what the report schema holds', () => {
  const detail = 'x'.repeat(5000);
  const r = buildVerifyReport({ listing: listing([], [{ key: key(FULL), problem: detail }]), findings: [], orphans: [] }, RUN);
  expect(r.problems[0]!.detail).toHaveLength(2000);
  expect(RepoVerifyReportSchema.safeParse(r).success).toBe(true);
});
