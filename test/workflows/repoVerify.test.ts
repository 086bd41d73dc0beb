/**
 * The repository verification's runbook with fake activities: every configured cluster
 * when none is named, one activity per backup, a backup whose check fails outright
 * reported as not verified while the run goes on, one report stored and one alert per
 * cluster at the report's severity, and a repository that cannot be listed alerting and
 * failing the run.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FakeActivities, failureOf, resultOf, useWorkflowTestEnv, type Fakes } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

const FULL = '20261120T020000.000Z-full';
const INC = '20261120T060000.000Z-incremental';
const key = (cluster: string, id: string) => `${cluster}/${id.split('-')[1]}/2026-11-20/${id}`;

interface Report {
  cluster: string;
  clean: boolean;
  severity: string;
  backupsChecked: number;
  counts: Record<string, number>;
  problems: Array<{ class: string; key: string }>;
  unverified: Array<{ backupId: string; reason: string }>;
  requestedBy: string | null;
  runKey: string;
}

function fakes(overrides: Fakes = {}): FakeActivities {
  return new FakeActivities({
    listVerifyClusters: async () => ({ clusters: ['shop', 'crm'] }),
    listBackupsToVerify: async ({ cluster }: { cluster: string }) => ({
      cluster,
      repository: 'file:///srv/backups',
      backups: [
        { id: FULL, type: 'full', parentId: null, key: key(cluster, FULL), artifacts: 1, bytes: 1000 },
        { id: INC, type: 'incremental', parentId: FULL, key: key(cluster, INC), artifacts: 1, bytes: 100 },
      ],
      unusable: [],
    }),
    verifyBackup: async ({ cluster, backupId }: { cluster: string; backupId: string }) => {
      const name = backupId === FULL ? 'dump.sql.zst' : 'binlog.000001.zst';
      const damaged = cluster === 'crm' && backupId === INC;
      return {
        id: backupId,
        outcome: 'checked',
        key: key(cluster, backupId),
        artifacts: [{ name, key: `${key(cluster, backupId)}/${name}`, bytesRead: damaged ? 0 : 100, missing: damaged, problems: damaged ? [`${name}: missing`] : [] }],
      };
    },
    findOrphans: async () => ({ candidates: [] }),
    storeVerifyReport: async ({ report }: { report: Report }) => ({ key: `${report.cluster}/verify/${report.runKey}.json` }),
    ...overrides,
  });
}

describe('repository verify (fake activities, time-skipping server)', () => {
  test('no cluster named: every configured cluster, one activity per backup, a report and an alert each', async () => {
    const f = fakes();
    await t.run(f, async ({ start }) => {
      const result = await resultOf<{ clean: boolean; reports: Report[]; files: string[] }>(await start('repoVerifyWorkflow', { requestedBy: 'schedule dbops/shop/repo-verify' }));
      expect(result.clean).toBe(false);
      expect(result.reports.map((r) => [r.cluster, r.clean, r.severity, r.backupsChecked, r.requestedBy])).toEqual([
        ['shop', true, 'info', 2, 'schedule dbops/shop/repo-verify'],
        ['crm', false, 'critical', 2, 'schedule dbops/shop/repo-verify'],
      ]);
      expect(result.reports[1]!.problems).toEqual([expect.objectContaining({ class: 'missing', key: `${key('crm', INC)}/binlog.000001.zst` })]);
      expect(result.files).toEqual(result.reports.map((r) => `${r.cluster}/verify/${r.runKey}.json`));
    });
    expect(f.inputs('verifyBackup')).toEqual([
      { cluster: 'shop', backupId: FULL },
      { cluster: 'shop', backupId: INC },
      { cluster: 'crm', backupId: FULL },
      { cluster: 'crm', backupId: INC },
    ]);
    expect(f.count('storeVerifyReport')).toBe(2);
    expect(f.notifications()).toEqual(['info repository-verify', 'critical repository-verify']);
    expect(f.inputs('notify')[1]).toMatchObject({ cluster: 'crm', message: expect.stringMatching(/^repository verify of crm: BACKUPS CANNOT BE RESTORED AS THEY ARE: 1 missing;[\s\S]*\nreport: crm\/verify\/\d{8}T\d{6}Z\.json$/) });
  });

  test('one cluster named: only it; a backup whose check keeps failing is not verified, and the run goes on', async () => {
    const f = fakes({
      verifyBackup: async ({ backupId }: { backupId: string }) => {
        if (backupId === FULL) throw ApplicationFailure.nonRetryable('cannot reach s3://bucket/dbops', 'InvalidInput');
        return { id: backupId, outcome: 'checked', key: key('shop', backupId), artifacts: [] };
      },
    });
    await t.run(f, async ({ start }) => {
      const result = await resultOf<{ clean: boolean; reports: Report[] }>(await start('repoVerifyWorkflow', { cluster: 'shop' }));
      expect(result.clean).toBe(false);
      expect(result.reports).toHaveLength(1);
      expect(result.reports[0]).toMatchObject({ cluster: 'shop', severity: 'warning', backupsChecked: 1, unverified: [{ backupId: FULL, reason: 'cannot reach s3://bucket/dbops' }], requestedBy: null });
    });
    expect(f.count('listVerifyClusters')).toBe(0);
    expect(f.inputs('verifyBackup').map((i: { backupId: string }) => i.backupId)).toEqual([FULL, INC]);
    expect(f.notifications()).toEqual(['warning repository-verify']);
  });

  test('the repository cannot be listed: a critical alert, and the run fails with the reason', async () => {
    const f = fakes({
      listBackupsToVerify: async () => {
        throw ApplicationFailure.nonRetryable('access denied to s3://bucket/dbops', 'ConfigError');
      },
    });
    await t.run(f, async ({ start }) => {
      const failure = await failureOf(resultOf(await start('repoVerifyWorkflow', { cluster: 'shop' })));
      expect(failure).toMatchObject({ type: 'ConfigError', message: 'access denied to s3://bucket/dbops' });
    });
    expect(f.notifications()).toEqual(['critical repository-verify']);
    expect(f.inputs('notify')[0].message).toBe('repository verify of shop could not finish: access denied to s3://bucket/dbops');
    expect(f.count('storeVerifyReport')).toBe(0);
  });

  test('an input that names anything but a cluster is refused before any activity', async () => {
    const f = fakes();
    await t.run(f, async ({ start }) => {
      const failure = await failureOf(resultOf(await start('repoVerifyWorkflow', { cluster: 'shop', path: '/etc' })));
      expect(failure).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    });
    expect(f.names()).toEqual([]);
  });
});
