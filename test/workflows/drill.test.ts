/**
 * The DR drill's branches with fake activities: a malformed target fails the run at once
 * (not a wedged workflow task), and the quarterly profile's failover rehearsal waits for a
 * second person: rejected, it is recorded as skipped and the drill still passes.
 */
import { FakeActivities, failureOf, resultOf, waitForQuery, workflowTaskFailures, type Fakes, useWorkflowTestEnv, IDENTITY } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

const ALICE = IDENTITY.alice;
const BOB = IDENTITY.bob;

interface DrillResult {
  report: { passed: boolean; problems: string[]; checks: Array<{ what: string; ok: boolean; detail: string }>; drillId: string };
  files: { json: string; markdown: string };
}

function drill(overrides: Fakes = {}): FakeActivities {
  return new FakeActivities({
    planDrill: async () => ({
      product: 'mysql',
      plans: [{ database: 'shop', full: { id: '20260101T000000.000Z-full' }, chain: [{ id: '20260101T040000.000Z-incremental' }], window: { to: '2026-01-01T04:00:00.000Z' } }],
      expect: { shop: [{ table: 'orders', rows: 10 }] },
      objects: null,
      rpoSeconds: 60,
    }),
    provisionSandbox: async () => ({ baseDir: '/tmp/dbops-drills/x', socket: '/tmp/dbops-drills/x/mysqld.sock', pid: 4242, product: 'mysql' }),
    restoreIntoSandbox: async () => ({ snapshotCheck: { tables: 1, mismatches: [] }, replay: { file: 'binlog.000003', position: 900, gtid: null, transactions: 7 } }),
    checkSandbox: async () => ({ tables: { shop: [{ table: 'orders', rows: 12 }] }, objects: { routines: 0, triggers: 0, events: 0, views: 0 } }),
    runSampleQueries: async ({ kind }: { kind: string }) => [{ database: 'shop', sql: kind === 'sample' ? 'SELECT COUNT(*) FROM orders' : 'SELECT 1', rows: 1, minRows: 1, error: null }],
    teardownSandbox: async () => undefined,
    storeDrillReport: async () => ({ json: '/repo/drills/d.json', markdown: '/repo/drills/d.md' }),
    approvalPolicy: async () => ({ approvers: ['alice', 'bob'], selfApproval: false, timeout: '60m', escalateAfter: ['15m'] }),
    callerIdentities: async (source: Record<string, unknown>) => ({ starter: ALICE, decider: Object.keys(source).length === 0 ? null : BOB }),
    ...overrides,
  });
}

describe('DR drill (fake activities, time-skipping server)', () => {
  test("rtoTarget '1.5h' fails the run at once with InvalidInput: no activity, no failed workflow task", async () => {
    const fakes = drill();
    await t.run(fakes, async ({ start }) => {
      const handle = await start('disasterRecoveryDrillWorkflow', { cluster: 'shop', rtoTarget: '1.5h' });
      const failure = await failureOf(resultOf(handle));
      expect(failure.type).toBe('InvalidInput');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/^drill: rtoTarget: a duration such as/);
      expect(await workflowTaskFailures(handle)).toEqual([]);
      expect(fakes.calls).toEqual([]);
    });
  });

  test.each([
    ['rejected', 'reject', 'skipped: rejected by bob', ['sample']],
    ['approved', 'approve', null, ['sample', 'failover']],
  ])('full: true, failover rehearsal %s: the drill passes and tears down its server', async (_label, signal, skipped, kinds) => {
    const fakes = drill();
    await t.run(fakes, async ({ start }) => {
      const handle = await start('disasterRecoveryDrillWorkflow', { cluster: 'shop', full: true, requestedBy: 'alice' });
      await waitForQuery<{ status: string; action: string } | null>(handle, 'approval', (a) => a?.status === 'pending', 'the failover approval');
      expect(fakes.inputs('approvalPolicy')).toEqual([{ cluster: 'shop', action: 'drill-failover' }]);
      await handle.signal(signal, { operator: 'bob', reason: 'not this quarter' });
      const { report } = await resultOf<DrillResult>(handle);

      expect(report.passed).toBe(true);
      expect(report.problems).toEqual([]);
      const failover = report.checks.filter((c) => c.what === 'failover rehearsal' || c.what.startsWith('failover check'));
      expect(failover).toEqual(
        skipped ? [{ what: 'failover rehearsal', ok: true, detail: skipped }] : [{ what: 'failover check on shop: SELECT 1', ok: true, detail: '1 row(s), at least 1 expected' }],
      );
      expect(fakes.inputs('runSampleQueries').map((q: { kind: string }) => q.kind)).toEqual(kinds);
      // The throwaway server is of the drilled backup's product.
      expect(fakes.inputs('provisionSandbox')).toEqual([{ drillId: report.drillId, product: 'mysql' }]);
      expect(fakes.inputs('teardownSandbox')).toEqual([{ drillId: report.drillId }]);
      expect(fakes.inputs('storeDrillReport')).toEqual([{ report }]);
      expect(fakes.notifications()).toEqual(['info approval-requested']); // no dr-drill-failed
    });
  });
});
