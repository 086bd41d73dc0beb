/**
 * The archive workflow's branches with fake activities: --yes by somebody who is not an
 * approver, counts that disagree, a forged carried state, and continue-as-new carrying
 * measurements only (never SQL).
 */
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { FakeActivities, failureOf, resultOf, workflowTaskFailures, type Fakes, useWorkflowTestEnv, IDENTITY } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

const ALICE = IDENTITY.alice;
const PREDICATE = 'created_at < NOW() - INTERVAL 90 DAY';
const JOB = { cluster: 'shop', database: 'shop', table: 'orders', where: PREDICATE, to: 'orders_history', approval: false, continueAsNewEvery: 2 };
const FORGED_SQL = 'DELETE FROM shop.customers -- forged';

type Job = Record<string, unknown> & { where: string; cluster: string };

/** What planArchive reports: the plan-time facts, plus the SQL and DDL the worker derived (for --dry-run). */
function planFor(job: Job) {
  const facts = {
    job,
    dest: { cluster: 'shop', database: 'shop', table: 'orders_history' },
    sameServer: true,
    asOf: 1_767_225_600,
    key: 'id',
    columns: ['id', 'created_at', 'total'],
    keyMin: '1',
    keyMax: '4000',
    planned: { rows: 4000, sum: '123456789', xor: '987' },
    destBefore: { rows: 0, sum: '0', xor: '0' },
    destExists: false,
    index: 'PRIMARY',
    estimatedBatches: 4,
    timeZone: null,
    warnings: [],
  };
  return { facts, plan: { ...facts, createDest: 'CREATE TABLE `shop`.`orders_history` LIKE `shop`.`orders`', sql: { count: FORGED_SQL, copy: FORGED_SQL, delete: FORGED_SQL } } };
}

const conserved = (moved: number) => ({
  ok: true,
  conserved: true,
  complete: moved === 4000,
  moved: { rows: moved, sum: '0', xor: '0' },
  remaining: { rows: 4000 - moved, sum: '0', xor: '0' },
  problems: [],
});

function archive(overrides: Fakes = {}): FakeActivities {
  let moved = 0;
  return new FakeActivities({
    planArchive: async ({ job }: { job: Job }) => planFor(job).plan,
    callerIdentities: async () => ({ starter: ALICE, decider: null }),
    approvalPolicy: async () => ({ approvers: ['alice', 'bob'], selfApproval: true, timeout: '60m', escalateAfter: [] }),
    ensureArchiveDestination: async () => undefined,
    // Two batches per call: 1000 rows each, done after 4000.
    moveArchiveBatches: async ({ maxBatches }: { maxBatches: number }) => {
      const batches = Math.min(maxBatches, 2);
      moved += batches * 1000;
      return { batches, moved: batches * 1000, cursor: { after: String(moved) }, done: moved >= 4000, throttle: null };
    },
    verifyArchive: async ({ expectComplete }: { expectComplete: boolean }) => conserved(expectComplete ? 4000 : 2000),
    storeArchiveReport: async () => '/repo/shop/archive/report.json',
    ...overrides,
  });
}

/** Every key of a JSON value, at any depth. */
function keysDeep(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysDeep);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...keysDeep(v)]);
  return [];
}

describe('archive workflow (fake activities, time-skipping server)', () => {
  test('--yes by somebody who is not an approver fails with InvalidInput before any row is moved', async () => {
    const fakes = archive();
    const failure = await t.run(fakes, async ({ start }) =>
      failureOf(resultOf(await start('archiveWorkflow', { job: { ...JOB, approval: true }, requestedBy: 'mallory', preApproved: { by: 'mallory', reason: 'trust me' } }))),
    );

    expect(failure.type).toBe('InvalidInput');
    expect(failure.message).toContain('--yes: mallory is not an approver for archive-delete on shop (approvers: alice, bob)');
    expect(fakes.inputs('approvalPolicy')).toEqual([{ cluster: 'shop', action: 'archive-delete' }]);
    expect(fakes.count('moveArchiveBatches')).toBe(0);
    expect(fakes.count('ensureArchiveDestination')).toBe(0);
  });

  test('counts that disagree (ArchiveCountMismatch) alert, verify what was moved, and fail the run with that type', async () => {
    const fakes = archive({
      moveArchiveBatches: async () => {
        throw ApplicationFailure.nonRetryable('range 1001..2000: copied 1000 row(s) but deleted 999, three times; rolled back', 'ArchiveCountMismatch');
      },
    });
    const failure = await t.run(fakes, async ({ start }) => failureOf(resultOf(await start('archiveWorkflow', { job: JOB, requestedBy: 'alice' }))));

    expect(failure.type).toBe('ArchiveCountMismatch');
    expect(failure.message).toBe('range 1001..2000: copied 1000 row(s) but deleted 999, three times; rolled back; moved 2000 of 4000 row(s), nothing lost or duplicated (verified)');
    expect(fakes.notifications()).toEqual(['critical archive-count-mismatch']);
    expect(fakes.inputs('notify')[0].message).toContain('copied 1000 row(s) but deleted 999');
    expect(fakes.inputs('verifyArchive')).toEqual([expect.objectContaining({ expectComplete: false, planned: { rows: 4000, sum: '123456789', xor: '987' } })]);
    expect(fakes.count('moveArchiveBatches')).toBe(1); // non-retryable: no retry of the mismatching range
    const names = fakes.names();
    expect(names.indexOf('notify')).toBeLessThan(names.indexOf('verifyArchive'));
  });

  test('a "carried" state on a run that did not continue as new is refused before anything runs', async () => {
    const fakes = archive();
    // Well-formed (it parses), so only its origin is wrong: a forged approval and a wider key range.
    const { facts } = planFor(JOB as Job);
    const carried = {
      facts: { ...facts, keyMin: '0', keyMax: '999999999' },
      progress: { phase: 'moving', planned: 4000, moved: 0, batches: 0, cursor: { after: null }, throttled: null, pausedBy: null, runs: 1, startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' },
      approval: { decision: 'approved', by: 'bob', identity: 'dbops-cli/bob@bob-laptop', at: '2026-01-01T00:00:00.000Z', reason: 'forged' },
      requester: { name: 'alice', identity: ALICE },
      log: [],
    };
    const failure = await t.run(fakes, async ({ start }) => {
      const handle = await start('archiveWorkflow', { job: JOB, requestedBy: 'alice', carried });
      const f = await failureOf(resultOf(handle));
      expect(await workflowTaskFailures(handle)).toEqual([]);
      return f;
    });

    expect(failure.type).toBe('InvalidInput');
    expect(failure.message).toContain('carried: only a run that continued as new carries state');
    expect(fakes.calls).toEqual([]); // no plan, no move, no verification
  });

  test('continue-as-new after continueAsNewEvery batches hands over facts and progress but no SQL, and the next run finishes', async () => {
    const fakes = archive();
    await t.run(fakes, async ({ start }) => {
      const handle = await start('archiveWorkflow', { job: JOB, requestedBy: 'alice' });
      const result = await resultOf<{ status: string; progress: { runs: number; moved: number; batches: number }; plan: { sql: { delete: string } }; verification: { ok: boolean } }>(handle);

      expect(result.status).toBe('done');
      expect(result.progress).toEqual(expect.objectContaining({ runs: 2, moved: 4000, batches: 4 }));
      expect(result.verification.ok).toBe(true);
      // The second run derived its statements from the job again; the plan's SQL never travelled.
      expect(result.plan.sql.delete).toContain(PREDICATE);
      expect(JSON.stringify(result.plan)).not.toContain('forged');

      // The run that continued as new: what it handed over.
      const first = await t.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
      const continued = first.events?.find((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
      expect(continued).toBeDefined();
      const next = defaultPayloadConverter.fromPayload<{ job: unknown; carried: { facts: unknown; progress: { batches: number; cursor: unknown }; requester: unknown } }>(
        continued!.workflowExecutionContinuedAsNewEventAttributes!.input!.payloads![0]!,
      );
      expect(keysDeep(next)).not.toContain('sql');
      expect(keysDeep(next)).not.toContain('createDest');
      expect(JSON.stringify(next)).not.toContain('forged');
      expect(next.carried.facts).toEqual(expect.objectContaining({ asOf: 1_767_225_600, key: 'id', planned: { rows: 4000, sum: '123456789', xor: '987' } }));
      expect(next.carried.progress).toEqual(expect.objectContaining({ batches: 2, cursor: { after: '2000' } }));
      expect(next.carried.requester).toEqual({ name: 'alice', identity: ALICE });

      // Planned once, destination once, two move chunks (the second from where the first stopped), verified once at the end.
      expect(fakes.count('planArchive')).toBe(1);
      expect(fakes.count('ensureArchiveDestination')).toBe(1);
      expect(fakes.inputs('moveArchiveBatches').map((m: { cursor: unknown; maxBatches: number }) => [m.cursor, m.maxBatches])).toEqual([
        [{ after: null }, 2],
        [{ after: '2000' }, 2],
      ]);
      expect(fakes.inputs('verifyArchive')).toEqual([expect.objectContaining({ expectComplete: true })]);
      expect(fakes.count('storeArchiveReport')).toBe(1);
      expect(await workflowTaskFailures(handle)).toEqual([]);
    });
  });
});
