/**
 * The schema-change workflow's branches with fake activities: a refused preflight touches
 * nothing; the schema backup comes before the approval and the build; a verify query that
 * misses the new index rolls it back at once; a rollback asked for by a stranger is
 * refused and one by the requester drops the index; the watch window closing leaves it;
 * the `abort` signal stops a build in progress.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { healthyBackup } from '../harness/backupFakes';
import { IDENTITY, MINUTE, resultOf, type Fakes, useWorkflowTestEnv, waitForQuery } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();
const CAROL = 'dbops-cli/carol@carol-laptop';

const ADD = { kind: 'add-index', table: 'orders', index: 'idx_created', unique: false, columns: [{ name: 'created_at', prefix: null, desc: false }] };
const DROP = { kind: 'drop-index', table: 'orders', index: 'idx_created' };
const INPUT = { cluster: 'shop', database: 'shop', change: ADD, verifyQueries: ['SELECT id FROM orders WHERE created_at > NOW()'], requestedBy: 'carol' };
const BUILT = { outcome: 'done', why: null, seconds: 3, lockTries: 1, samples: 5, peakThreadsRunning: 4, peakLagSeconds: null, adopted: false };

function plan(overrides: Record<string, unknown> = {}) {
  return {
    observedAt: '2026-12-02T10:00:00.000Z',
    description: 'CREATE INDEX idx_created ON shop.orders (created_at)',
    statement: 'ALTER TABLE `shop`.`orders` ADD INDEX `idx_created` (`created_at`), ALGORITHM=INPLACE, LOCK=NONE',
    rollback: 'ALTER TABLE `shop`.`orders` DROP INDEX `idx_created`, ALGORITHM=INPLACE, LOCK=NONE',
    table: { engine: 'InnoDB', rowsEstimate: 1_000_000, dataBytes: 50e6, indexBytes: 20e6 },
    neededBytes: 70e6,
    freeBytes: 50e9,
    freeOn: '/var/lib/mysql',
    onlineRefusal: null,
    blockers: [],
    refusals: [],
    warnings: [],
    before: [{ query: 0, accesses: [{ table: 'orders', accessType: 'ALL', key: null, possibleKeys: [], rows: 1_000_000 }], usesIndex: false }],
    watchForSeconds: 900,
    ...overrides,
  };
}
const usesIt = (yes: boolean) => [{ query: 0, accesses: [{ table: 'orders', accessType: yes ? 'range' : 'ALL', key: yes ? 'idx_created' : null, possibleKeys: [], rows: 10 }], usesIndex: yes }];

function schemaChange(overrides: Fakes = {}) {
  return healthyBackup({
    // Approvals come from bob's client; an Update (a rollback) from carol's, the one that started the run.
    callerIdentities: async (source: { updateId?: string }) => ({ starter: CAROL, decider: source.updateId ? CAROL : IDENTITY.bob }),
    approvalPolicy: async () => ({ approvers: ['alice', 'bob'], selfApproval: false, timeout: '60m', escalateAfter: [] }),
    planSchemaChange: async () => plan(),
    applySchemaChange: async () => BUILT,
    explainSchemaChange: async () => usesIt(true),
    storeSchemaChangeReport: async () => ({ key: '/repo/shop/schema-changes/2026-12-02/x.json' }),
    ...overrides,
  });
}

type Result = { status: string; why: string | null; rolledBack: { by: string; automatic: boolean } | null; schemaBackupId: string | null; build: unknown };

describe('schema change workflow (fake activities, time-skipping server)', () => {
  test('a refused preflight ends the run: no backup, no approval, no change; the report and a warning say why', async () => {
    const fakes = schemaChange({ planSchemaChange: async () => plan({ refusals: ['shop.orders already has an index named idx_created: pick another name (or drop it first)'] }) });
    const result = await t.run(fakes, async ({ start }) => resultOf<Result>(await start('schemaChangeWorkflow', INPUT)));
    expect(result).toMatchObject({ status: 'refused', why: expect.stringMatching(/already has an index named idx_created/) });
    expect(fakes.count('dumpFull')).toBe(0);
    expect(fakes.count('approvalPolicy')).toBe(0);
    expect(fakes.count('applySchemaChange')).toBe(0);
    expect(fakes.inputs('storeSchemaChangeReport')[0].report).toMatchObject({ status: 'refused', change: ADD });
    expect(fakes.notifications()).toEqual(['warning schema-change-refused']);
  });

  test('backup, approval, build, verification in that order; a verify query that misses the index rolls it back at once', async () => {
    const fakes = schemaChange({ explainSchemaChange: async () => usesIt(false) });
    const result = await t.run(fakes, async ({ start }) => {
      const handle = await start('schemaChangeWorkflow', INPUT);
      await waitForQuery(handle, 'approval', (s: { status: string } | null) => s?.status === 'pending', 'the approval');
      await handle.signal('approve', { operator: 'bob', reason: 'CHG-1' });
      return resultOf<Result>(handle);
    });
    expect(result.status).toBe('rolled-back');
    expect(result.why).toMatch(/verify query 1 does not use idx_created \(plan: orders ALL via no index\)/);
    expect(result.rolledBack).toMatchObject({ by: 'dbops', automatic: true });
    expect(result.schemaBackupId).toEqual(expect.any(String));
    const order = fakes.names().filter((n) => ['planSchemaChange', 'dumpFull', 'approvalPolicy', 'applySchemaChange', 'explainSchemaChange', 'storeSchemaChangeReport'].includes(n));
    expect(order).toEqual(['planSchemaChange', 'dumpFull', 'approvalPolicy', 'approvalPolicy', 'applySchemaChange', 'explainSchemaChange', 'applySchemaChange', 'storeSchemaChangeReport']);
    expect(fakes.inputs('dumpFull')[0]).toMatchObject({ schemaOnly: true });
    expect(fakes.inputs('applySchemaChange').map((i: { change: unknown }) => i.change)).toEqual([ADD, DROP]);
    expect(fakes.notifications()).toContain('critical schema-change-rolled-back');
  });

  test('while the change is watched a stranger cannot roll it back, the requester can; unasked, the window closes and it stays', async () => {
    const fakes = schemaChange();
    const rolledBack = await t.run(fakes, async ({ start }) => {
      const handle = await start('schemaChangeWorkflow', INPUT);
      await waitForQuery(handle, 'approval', (s: { status: string } | null) => s?.status === 'pending', 'the approval');
      await handle.signal('approve', { operator: 'bob', reason: 'CHG-2' });
      await waitForQuery(handle, 'schema-change', (s: { phase: string }) => s.phase === 'watching', 'watching');
      const refused = await handle.executeUpdate('rollback', { args: [{ operator: 'mallory', reason: 'because' }] }).catch((e: Error) => e);
      expect(String(((refused as Error).cause as Error).message)).toMatch(/mallory may not roll this change back/);
      await handle.executeUpdate('rollback', { args: [{ operator: 'carol', reason: 'writes slower' }] });
      return resultOf<Result>(handle);
    });
    expect(rolledBack).toMatchObject({ status: 'rolled-back', rolledBack: { by: 'carol', automatic: false } });
    expect(fakes.inputs('applySchemaChange').map((i: { change: unknown }) => i.change)).toEqual([ADD, DROP]);

    const kept = schemaChange();
    const done = await t.run(kept, async ({ start }) => {
      const handle = await start('schemaChangeWorkflow', INPUT);
      await waitForQuery(handle, 'approval', (s: { status: string } | null) => s?.status === 'pending', 'the approval');
      await handle.signal('approve', { operator: 'bob', reason: 'CHG-3' });
      await waitForQuery(handle, 'schema-change', (s: { phase: string }) => s.phase === 'watching', 'watching');
      await t.env.sleep(16 * MINUTE);
      return resultOf<Result>(handle);
    });
    expect(done.status).toBe('done');
    expect(kept.inputs('applySchemaChange').map((i: { change: unknown }) => i.change)).toEqual([ADD]);
  });

  test('an abort that arrives before the build is kept: approved, the run ends cancelled and nothing is built', async () => {
    const fakes = schemaChange();
    const result = await t.run(fakes, async ({ start }) => {
      const handle = await start('schemaChangeWorkflow', INPUT);
      await waitForQuery(handle, 'approval', (s: { status: string } | null) => s?.status === 'pending', 'the approval');
      await handle.signal('abort', { operator: 'alice', reason: 'not today' });
      await handle.signal('approve', { operator: 'bob', reason: 'CHG-5' });
      return resultOf<Result>(handle);
    });
    expect(result).toMatchObject({ status: 'cancelled', why: expect.stringMatching(/stopped by alice: not today before the build started/) });
    expect(fakes.count('applySchemaChange')).toBe(0);
  });

  test('a verification that cannot run after the build ends the run failed, with the index in place and a report', async () => {
    const fakes = schemaChange({ explainSchemaChange: async () => { throw ApplicationFailure.nonRetryable('verify query 1 cannot be explained', 'InvalidInput'); } });
    const result = await t.run(fakes, async ({ start }) => {
      const handle = await start('schemaChangeWorkflow', INPUT);
      await waitForQuery(handle, 'approval', (s: { status: string } | null) => s?.status === 'pending', 'the approval');
      await handle.signal('approve', { operator: 'bob', reason: 'CHG-6' });
      return resultOf<Result>(handle);
    });
    expect(result).toMatchObject({ status: 'failed', why: expect.stringMatching(/the index was built, then verify failed: verify query 1 cannot be explained; the index is in place/) });
    expect(fakes.inputs('storeSchemaChangeReport')[0].report).toMatchObject({ status: 'failed' });
    expect(fakes.notifications()).toContain('critical schema-change-failed');
  });

  test('the abort signal stops a build in progress: the activity is cancelled and the run ends cancelled, naming who', async () => {
    const fakes = schemaChange({
      applySchemaChange: async () => {
        const ctx = Context.current();
        for (;;) {
          ctx.heartbeat({ phase: 'building' });
          await Promise.race([ctx.cancelled, new Promise((r) => setTimeout(r, 50))]).catch(() => undefined);
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled');
        }
      },
    });
    const result = await t.run(fakes, async ({ start }) => {
      const handle = await start('schemaChangeWorkflow', INPUT);
      await waitForQuery(handle, 'approval', (s: { status: string } | null) => s?.status === 'pending', 'the approval');
      await handle.signal('approve', { operator: 'bob', reason: 'CHG-4' });
      await waitForQuery(handle, 'schema-change', (s: { phase: string }) => s.phase === 'build', 'the build');
      await handle.signal('abort', { operator: 'alice', reason: 'replica lag' });
      return resultOf<Result>(handle);
    });
    expect(result).toMatchObject({ status: 'cancelled', why: expect.stringMatching(/stopped by alice: replica lag/) });
    expect(fakes.count('explainSchemaChange')).toBe(0);
  });
});
