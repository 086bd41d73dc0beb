/**
 * Retention that would delete more than the configured amount asks a person first; a
 * rejection deletes nothing (fake activities, time-skipping server).
 */
import { FakeActivities, resultOf, waitForQuery, useWorkflowTestEnv } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

const PLAN = {
  delete: [
    { id: '20250101T000000.000Z-full', type: 'full', bytes: 5_000_000, reason: 'older than 30 days' },
    { id: '20250101T040000.000Z-incremental', type: 'incremental', bytes: 1_000_000, reason: 'its full goes' },
  ],
  keep: [{ id: '20260101T000000.000Z-full', type: 'full', reasons: ['newest full'] }],
  storage: { usedBytes: 10_000_000, maxBytes: null, usedFraction: null, level: 'unlimited', bytesAfter: 4_000_000, fractionAfter: null },
  needsApproval: true,
  warnings: [],
};

describe('retention (fake activities, time-skipping server)', () => {
  test('needsApproval, rejected: nothing is deleted, no lock is taken, the result says rejected and by whom', async () => {
    const fakes = new FakeActivities({
      planRetention: async () => ({ plan: PLAN }),
      approvalPolicy: async () => ({ approvers: ['alice', 'bob'], selfApproval: false, timeout: '60m', escalateAfter: ['15m', '30m'] }),
      callerIdentities: async (source: Record<string, unknown>) => ({ starter: 'schedule@worker', decider: Object.keys(source).length === 0 ? null : 'dbops-cli/bob@bob-laptop' }),
    });
    await t.run(fakes, async ({ start }) => {
      const handle = await start('retentionWorkflow', { cluster: 'shop', requestedBy: 'schedule' });
      const asked = await waitForQuery<{ status: string; summary: string } | null>(handle, 'approval', (a) => a?.status === 'pending', 'the approval');
      expect(asked?.summary).toContain('delete 2 backup(s)');
      await handle.signal('reject', { operator: 'bob', reason: 'keep them until the audit' });
      const result = await resultOf<{ status: string; approval: { decision: string; by: string; reason: string }; deleted: unknown[]; freedBytes: number }>(handle);

      expect(result.status).toBe('rejected');
      expect(result.approval).toEqual(expect.objectContaining({ decision: 'rejected', by: 'bob', reason: 'keep them until the audit' }));
      expect(result.deleted).toEqual([]);
      expect(result.freedBytes).toBe(0);
      expect(fakes.inputs('approvalPolicy')).toEqual([{ cluster: 'shop', action: 'retention-delete' }]);
      expect(fakes.count('deleteBackups')).toBe(0);
      expect(fakes.count('acquireBackupLock')).toBe(0);
    });
  });
});
