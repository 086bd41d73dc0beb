/**
 * The approval gate, through the table restore with swap: true (fake activities, virtual
 * time). Who may approve comes from approvalPolicy; the requester's identity and the
 * decider's come from callerIdentities. Nobody deciding escalates and then expires at the
 * deadline (the safe outcome: the restored tables are dropped); the requester approving
 * their own run is refused by name and by identity; a malformed payload is recorded as
 * refused and never fails a workflow task; a second person's approval swaps.
 */
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { FakeActivities, MINUTE, resultOf, waitForQuery, workflowTaskFailures, type Fakes, useWorkflowTestEnv, IDENTITY } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

const ALICE = IDENTITY.alice;
const BOB = IDENTITY.bob;

const POLICY = { approvers: ['alice', 'bob'], selfApproval: false, timeout: '60m', escalateAfter: ['15m', '30m'] };

const INPUT = { cluster: 'shop', database: 'shop', target: { kind: 'latest' }, tables: ['orders'], swap: true, requestedBy: 'alice' };

const VERIFIED = [{ table: 'orders', rows: 10, checksum: '123' }];

interface Approval {
  status: string;
  requestedAt: string;
  deadline: string;
  requestedBy: string;
  approvers: string[];
  escalations: Array<{ at: string; level: number }>;
  refused: Array<{ operator: string; identity: string | null; why: string }>;
  decision: { decision: string; by: string | null; identity: string | null; at: string; reason: string | null } | null;
}

interface TableRestoreResult {
  swapped: boolean;
  tables: Array<{ table: string; restoredAs: string | null; liveKeptAs: string | null }>;
  decision: Approval['decision'];
}

/** A table restore that succeeds up to the approval; decisions arrive from `decider` (alice started the run). */
function tableRestore(decider: string, overrides: Fakes = {}): FakeActivities {
  return new FakeActivities({
    planRestore: async ({ cluster, database, target }: { cluster: string; database: string; target: unknown }) => ({
      ok: true,
      plan: {
        cluster,
        database,
        target,
        full: {
          id: '20260101T000000.000Z-full',
          path: 'shop/full/20260101T000000.000Z-full',
          artifact: 'dump.sql.zst',
          product: 'mariadb',
          tables: ['orders', 'customers'],
          snapshot: { file: 'binlog.000002', position: 4711, gtidSet: '0-11-42' },
        },
        chain: [],
        binlogs: [],
        start: { file: 'binlog.000002', position: 4711, gtidSet: '0-11-42' },
        stop: { kind: 'end' },
        window: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T00:00:00.000Z' },
        storedBytes: 100,
      },
    }),
    // Asked with {} for the requester (starter), with the decision's source for a decider.
    callerIdentities: async (source: Record<string, unknown>) => ({ starter: ALICE, decider: Object.keys(source).length === 0 ? null : decider }),
    restoreDatabase: async () => ({ replay: { file: 'binlog.000002', position: 4711, gtid: null }, rewrittenReferences: [], definersRestored: 0, warnings: [], durationMs: 1000 }),
    verifyDatabase: async () => VERIFIED,
    moveTables: async () => undefined,
    dropRestoreTarget: async () => undefined,
    approvalPolicy: async () => POLICY,
    captureTriggers: async () => [{ table: 'orders', name: 'orders_audit', sql: 'CREATE TRIGGER …' }],
    swapTables: async () => undefined,
    dropRestoredTables: async () => undefined,
    ...overrides,
  });
}

const pending = (handle: WorkflowHandle, pred: (a: Approval) => boolean = () => true, what = 'the approval to be pending') =>
  waitForQuery<Approval | null>(handle, 'approval', (a) => a !== null && a.status === 'pending' && pred(a), what) as Promise<Approval>;

const since = (a: Approval, at: string) => Date.parse(at) - Date.parse(a.requestedAt);

function runTag(handle: WorkflowHandleWithFirstExecutionRunId): string {
  return handle.firstExecutionRunId.replace(/-/g, '').slice(0, 8).toLowerCase();
}

describe('approval gate (table restore with swap, fake activities, virtual time)', () => {
  test('nobody decides: escalates at 15 and 30 min (warning, then critical), expires at 60 min, drops the restored tables', async () => {
    const fakes = tableRestore(BOB);
    await t.run(fakes, async ({ start }) => {
      const handle = await start('tableRestoreWorkflow', INPUT);
      const asked = await pending(handle);
      expect(fakes.inputs('approvalPolicy')).toEqual([{ cluster: 'shop', action: 'restore-swap' }]);
      expect(asked).toEqual(expect.objectContaining({ approvers: ['alice', 'bob'], requestedBy: 'alice', escalations: [], refused: [] }));
      expect(since(asked, asked.deadline)).toBe(60 * MINUTE);

      await t.env.sleep(14 * MINUTE);
      expect((await pending(handle)).escalations).toEqual([]);
      await t.env.sleep(2 * MINUTE); // 16 min
      const first = await pending(handle, (a) => a.escalations.length === 1, 'the first escalation');
      expect(since(first, first.escalations[0]!.at)).toBeGreaterThanOrEqual(15 * MINUTE);
      expect(since(first, first.escalations[0]!.at)).toBeLessThan(16 * MINUTE);
      await t.env.sleep(15 * MINUTE); // 31 min
      const second = await pending(handle, (a) => a.escalations.length === 2, 'the second escalation');
      expect(since(second, second.escalations[1]!.at)).toBeGreaterThanOrEqual(30 * MINUTE);
      expect(since(second, second.escalations[1]!.at)).toBeLessThan(31 * MINUTE);
      await t.env.sleep(28 * MINUTE); // 59 min: still waiting
      expect((await pending(handle)).status).toBe('pending');

      const result = await resultOf<TableRestoreResult>(handle);
      expect(result.decision).toEqual(expect.objectContaining({ decision: 'expired', by: null }));
      expect(since(asked, result.decision!.at)).toBeGreaterThanOrEqual(60 * MINUTE);
      expect(since(asked, result.decision!.at)).toBeLessThan(61 * MINUTE);
      expect(result.swapped).toBe(false);
      expect(result.tables).toEqual([{ table: 'orders', restoredAs: null, liveKeptAs: null }]);
      expect(fakes.notifications()).toEqual(['info approval-requested', 'warning approval-escalation', 'critical approval-escalation', 'critical approval-expired']);
      expect(fakes.inputs('dropRestoredTables')).toEqual([{ cluster: 'shop', database: 'shop', runTag: runTag(handle), tables: ['orders'] }]);
      expect(fakes.count('captureTriggers') + fakes.count('swapTables')).toBe(0);
    });
  });

  test('the requester approving their own run by name is refused and the run keeps waiting for somebody else', async () => {
    const fakes = tableRestore(BOB);
    await t.run(fakes, async ({ start }) => {
      const handle = await start('tableRestoreWorkflow', INPUT);
      await pending(handle);
      await handle.signal('approve', { operator: 'alice', reason: 'I restored it, looks right' });
      const refused = await pending(handle, (a) => a.refused.length === 1, 'the refusal');
      expect(refused.refused[0]).toEqual(expect.objectContaining({ operator: 'alice', why: expect.stringContaining('the requester cannot approve their own run (alice requested this run)') }));
      expect(refused.decision).toBeNull();
      expect(fakes.inputs('callerIdentities')).toEqual([{}]); // refused by name before any identity was looked up

      await t.env.sleep(20 * MINUTE);
      expect((await pending(handle, (a) => a.escalations.length === 1, 'an escalation')).status).toBe('pending');
      expect(fakes.count('swapTables')).toBe(0);

      // Still waiting: a second person can still decide.
      await handle.signal('approve', { operator: 'bob', reason: 'checked the diff' });
      const result = await resultOf<TableRestoreResult>(handle);
      expect(result.decision).toEqual(expect.objectContaining({ decision: 'approved', by: 'bob', identity: BOB }));
      expect(result.swapped).toBe(true);
    });
  });

  test("bob's approval (another client) swaps: triggers captured first, then one swap with the verified tables", async () => {
    const fakes = tableRestore(BOB);
    await t.run(fakes, async ({ start }) => {
      const handle = await start('tableRestoreWorkflow', INPUT);
      await pending(handle);
      await handle.signal('approve', { operator: 'bob', reason: 'checked the diff' });
      const result = await resultOf<TableRestoreResult>(handle);
      const tag = runTag(handle);

      expect(result.swapped).toBe(true);
      expect(result.decision).toEqual(expect.objectContaining({ decision: 'approved', by: 'bob', identity: BOB, reason: 'checked the diff' }));
      expect(result.tables).toEqual([{ table: 'orders', restoredAs: 'orders', liveKeptAs: `orders_before_${tag}` }]);
      expect(fakes.inputs('callerIdentities')).toEqual([{}, { signalOrdinal: 1 }]);
      const names = fakes.names();
      expect(names.indexOf('captureTriggers')).toBeGreaterThan(-1);
      expect(names.indexOf('captureTriggers')).toBeLessThan(names.indexOf('swapTables'));
      expect(fakes.inputs('captureTriggers')).toEqual([{ cluster: 'shop', database: 'shop', tables: ['orders'] }]);
      expect(fakes.inputs('swapTables')).toEqual([
        { cluster: 'shop', database: 'shop', runTag: tag, tables: ['orders'], triggers: [{ table: 'orders', name: 'orders_audit', sql: 'CREATE TRIGGER …' }], expect: VERIFIED },
      ]);
      expect(fakes.count('dropRestoredTables')).toBe(0);
      expect(fakes.notifications()).toEqual(['info approval-requested']);
    });
  });

  test("a decision from the starter's own client (same identity, another name) is refused; nobody else decides, so it expires", async () => {
    const fakes = tableRestore(ALICE); // alice's client sends bob's name
    await t.run(fakes, async ({ start }) => {
      const handle = await start('tableRestoreWorkflow', INPUT);
      await pending(handle);
      await handle.signal('approve', { operator: 'bob', reason: 'trust me' });
      const refused = await pending(handle, (a) => a.refused.length === 1, 'the refusal');
      expect(refused.refused[0]).toEqual(
        expect.objectContaining({ operator: 'bob', identity: ALICE, why: expect.stringContaining(`the decision came from the client that started it, ${ALICE}`) }),
      );
      expect(refused.decision).toBeNull();
      expect(fakes.count('swapTables')).toBe(0);

      const result = await resultOf<TableRestoreResult>(handle);
      expect(result.decision?.decision).toBe('expired');
      expect(result.swapped).toBe(false);
      expect(fakes.count('captureTriggers') + fakes.count('swapTables')).toBe(0);
      expect(fakes.count('dropRestoredTables')).toBe(1);
    });
  });

  test('a malformed decision ({ operator: 123 }) is recorded as refused, the run stays pending, no workflow task fails', async () => {
    const fakes = tableRestore(BOB);
    await t.run(fakes, async ({ start }) => {
      const handle = await start('tableRestoreWorkflow', INPUT);
      await pending(handle);
      await handle.signal('approve', { operator: 123 });
      await handle.signal('reject', 'not even an object');
      const state = await pending(handle, (a) => a.refused.length === 2, 'both refusals');
      expect(state.refused).toEqual([
        expect.objectContaining({ operator: '?', why: expect.stringMatching(/^malformed decision: operator: /) }),
        expect.objectContaining({ operator: '?', why: expect.stringMatching(/^malformed decision: /) }),
      ]);
      // The Update's validator answers the caller at once, and nothing is recorded.
      const answer = await handle.executeUpdate('decide', { args: [{ operator: 123, decision: 'approve' }] }).catch((e: Error) => e);
      expect(answer).toBeInstanceOf(Error);
      expect(String((answer as Error).cause)).toMatch(/malformed decision: operator: /);
      expect((await pending(handle)).refused).toHaveLength(2);
      expect(await workflowTaskFailures(handle)).toEqual([]);
      expect((await handle.describe()).status.name).toBe('RUNNING');

      // A well-formed Update from bob is applied and answered with the new state.
      const decided = await handle.executeUpdate<Approval, [unknown]>('decide', { args: [{ operator: 'bob', reason: 'fine', decision: 'approve' }] });
      expect(decided).toEqual(expect.objectContaining({ status: 'approved', decision: expect.objectContaining({ by: 'bob', identity: BOB }) }));
      const result = await resultOf<TableRestoreResult>(handle);
      expect(result.swapped).toBe(true);
      expect(await workflowTaskFailures(handle)).toEqual([]);
    });
  });
});
