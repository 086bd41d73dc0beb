/**
 * The backup workflows' branches with fake activities (no database): the chain's plan
 * decides between a full instead, a gap and a copy; a busy cluster is a skipped run; the
 * lock is released whatever happens once it was taken; a server that does not log ROW
 * events warns the operator.
 */
import { ApplicationFailure } from '@temporalio/common';
import { healthyBackup, server } from '../harness/backupFakes';
import { failureOf, resultOf, useWorkflowTestEnv } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

describe('backup workflows (fake activities, time-skipping server)', () => {
  test('an incremental whose plan says "full" takes a full instead, says why in the manifest, and unlocks', async () => {
    const fakes = healthyBackup();
    const manifest = (await t.run(fakes, async ({ start }) => resultOf(await start('incrementalBackupWorkflow', { cluster: 'shop', requestedBy: 'schedule' })))) as {
      type: string;
      reason: string;
      requestedBy: string;
    };

    expect(manifest.type).toBe('full');
    expect(manifest.reason).toBe('instead of incremental: no full backup yet');
    expect(manifest.requestedBy).toBe('schedule');
    expect(fakes.inputs('planBinlogBackup')[0]).toEqual({ cluster: 'shop', type: 'incremental' });
    expect(fakes.inputs('dumpFull')).toEqual([expect.objectContaining({ cluster: 'shop', databases: ['shop'], schemaOnly: false })]);
    expect(fakes.count('copyBinlogs')).toBe(0);
    expect(fakes.inputs('recordBackupOutcome')).toEqual([expect.objectContaining({ cluster: 'shop', type: 'full', outcome: 'success' })]);
    expect(fakes.inputs('releaseBackupLock')).toEqual([{ cluster: 'shop' }]);
    // The lock is held around the whole backup: taken first, released after the publish.
    const names = fakes.names();
    expect(names[0]).toBe('acquireBackupLock');
    expect(names.indexOf('releaseBackupLock')).toBeGreaterThan(names.indexOf('publishBackup'));
  });

  test('a gap in the chain marks it broken, fails with ChainGap, is counted as a failure, and unlocks', async () => {
    const fakes = healthyBackup({
      planBinlogBackup: async () => ({
        plan: { action: 'gap', reason: 'binlog.000003 was purged before it was copied', lastGoodBackupId: '20260101T000000.000Z-incremental' },
        server: server('ROW'),
      }),
    });
    const failure = await t.run(fakes, async ({ start }) => failureOf(resultOf(await start('incrementalBackupWorkflow', { cluster: 'shop' }))));

    expect(failure.type).toBe('ChainGap');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('gap in the backup chain: binlog.000003 was purged before it was copied');
    expect(fakes.inputs('markChainBroken')).toEqual([
      { cluster: 'shop', reason: 'binlog.000003 was purged before it was copied', lastGoodBackupId: '20260101T000000.000Z-incremental' },
    ]);
    expect(fakes.count('dumpFull') + fakes.count('copyBinlogs')).toBe(0);
    expect(fakes.inputs('recordBackupOutcome')).toEqual([expect.objectContaining({ cluster: 'shop', type: 'incremental', outcome: 'failure' })]);
    expect(fakes.inputs('recordBackupOutcome')[0].message).toContain('gap in the backup chain');
    expect(fakes.inputs('releaseBackupLock')).toEqual([{ cluster: 'shop' }]);
  });

  test('a busy cluster (ClusterBusy from acquireBackupLock) fails the run as skipped, and releases nothing it never held', async () => {
    const fakes = healthyBackup({
      acquireBackupLock: async () => {
        throw ApplicationFailure.nonRetryable('cluster shop is busy: full backup backup-full/shop/x holds the lock', 'ClusterBusy');
      },
    });
    const failure = await t.run(fakes, async ({ start }) => failureOf(resultOf(await start('fullBackupWorkflow', { cluster: 'shop' }))));

    expect(failure.type).toBe('ClusterBusy');
    expect(failure.message).toContain('cluster shop is busy');
    expect(fakes.count('acquireBackupLock')).toBe(1); // non-retryable: asked once
    expect(fakes.inputs('recordBackupOutcome')).toEqual([
      expect.objectContaining({ cluster: 'shop', type: 'full', outcome: 'skipped', message: expect.stringContaining('cluster shop is busy') }),
    ]);
    expect(fakes.count('inspectCluster') + fakes.count('dumpFull')).toBe(0);
    // Another run holds the lock: releasing it here would free somebody else's lock.
    expect(fakes.count('releaseBackupLock')).toBe(0);
  });

  test('a dump that fails removes the staging, is counted as a failure, and still releases the lock', async () => {
    const fakes = healthyBackup({
      dumpFull: async () => {
        throw ApplicationFailure.nonRetryable('mariadb-dump exited with 2: Access denied', 'DumpFailed');
      },
    });
    const failure = await t.run(fakes, async ({ start }) => failureOf(resultOf(await start('fullBackupWorkflow', { cluster: 'shop' }))));

    expect(failure.type).toBe('DumpFailed');
    expect(fakes.inputs('discardStaging')).toEqual([{ cluster: 'shop', backupId: expect.stringMatching(/^\d{8}T\d{6}\.\d{3}Z-full$/) }]);
    expect(fakes.count('publishBackup')).toBe(0);
    expect(fakes.inputs('recordBackupOutcome')).toEqual([expect.objectContaining({ type: 'full', outcome: 'failure', message: expect.stringContaining('Access denied') })]);
    expect(fakes.inputs('releaseBackupLock')).toEqual([{ cluster: 'shop' }]);
    expect(fakes.names().at(-1)).toBe('recordBackupOutcome'); // counted after the unlock
  });

  test.each([
    ['MIXED', ['warning binlog-format-not-row']],
    ['STATEMENT', ['warning binlog-format-not-row']],
    ['ROW', []],
    ['row', []],
  ])('binlog_format %s: the backup warns %j', async (format, expected) => {
    const fakes = healthyBackup({}, format);
    const manifest = (await t.run(fakes, async ({ start }) => resultOf(await start('fullBackupWorkflow', { cluster: 'shop' })))) as { type: string };

    expect(manifest.type).toBe('full');
    expect(fakes.notifications()).toEqual(expected);
    if (expected.length > 0) {
      expect(fakes.inputs('notify')[0]).toEqual(expect.objectContaining({ cluster: 'shop', message: expect.stringContaining(`binlog_format=${format}`) }));
      // A warning, not a refusal: the backup went on.
      expect(fakes.count('dumpFull')).toBe(1);
    }
  });
});
