/**
 * The continuous binlog archive's loop with fake activities: runs follow each other; a gap
 * makes the next run start a new timeline (and only the next); stop ends the workflow with
 * its state; an error no retry can fix fails it, saying why. (Pause and resume against a
 * real server: test/integration/binlogArchive.test.ts.)
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FakeActivities, failureOf, resultOf, useWorkflowTestEnv, waitForQuery } from '../harness/workflowEnv';

const t = useWorkflowTestEnv();

interface State {
  paused: boolean;
  pausedBy: string | null;
  stopping: boolean;
  timeline: string | null;
  file: string | null;
  position: number | null;
  runs: number;
  lastError: string | null;
}

/** A run of the fake stream: heartbeats as the real one does (so that a cancellation reaches it), then returns. */
async function streamFor(ms: number): Promise<void> {
  const ctx = Context.current();
  for (let waited = 0; waited < ms && !ctx.cancellationSignal.aborted; waited += 5) {
    ctx.heartbeat();
    await new Promise((r) => setTimeout(r, 5));
  }
  if (ctx.cancellationSignal.aborted) await ctx.cancelled; // reported as cancelled, as the real stream does
}

function progress(n: number) {
  return { timeline: 't20261202T100000Z', file: 'binlog.000003', position: 1000 * n, coveredUntil: '2026-12-02T10:00:00.000Z', segments: n, bytes: 1000 * n, started: { action: 'resume' } };
}

describe('binlog archive (fake activities, time-skipping server)', () => {
  test('a gap starts a new timeline on the next run only; stop ends the loop with its state', async () => {
    let n = 0;
    const f = new FakeActivities({
      archiveBinlogs: async () => {
        n += 1;
        if (n === 2) throw ApplicationFailure.nonRetryable('binlog.000003 has no transaction boundary at 700', 'BinlogArchiveGap');
        // Runs 1, 3, 4 end (runFor elapsed); the fifth streams until it is cancelled, as a real run would.
        await streamFor(n >= 5 ? Number.POSITIVE_INFINITY : 10);
        return progress(n);
      },
    });
    await t.run(f, async ({ start }) => {
      const handle = await start('binlogArchiveWorkflow', { cluster: 'shop', requestedBy: 'alice' });
      await waitForQuery<State>(handle, 'state', (s) => s.runs >= 3, 'three runs');
      for (let i = 0; i < 300 && f.count('archiveBinlogs') < 5; i++) await new Promise((r) => setTimeout(r, 20));
      await handle.signal('stop', { by: 'alice', reason: 'test' });
      const state = await resultOf<State>(handle);
      expect(state).toMatchObject({ stopping: true, timeline: 't20261202T100000Z', file: 'binlog.000003' });
    });
    const inputs = f.inputs('archiveBinlogs');
    expect(inputs[0]).toEqual({ cluster: 'shop', newTimeline: null });
    expect(inputs[1]).toEqual({ cluster: 'shop', newTimeline: null });
    expect(inputs[2]).toEqual({ cluster: 'shop', newTimeline: 'binlog.000003 has no transaction boundary at 700' });
    expect(inputs[3]).toEqual({ cluster: 'shop', newTimeline: null });
    expect(inputs).toHaveLength(5); // stopped while the fifth streamed: no sixth
  });

  test('an error no retry can fix fails the workflow, naming it', async () => {
    const f = new FakeActivities({
      archiveBinlogs: async () => {
        throw ApplicationFailure.nonRetryable('cluster shop: binary logging is off; enable log_bin to archive binlogs', 'ConfigError');
      },
    });
    await t.run(f, async ({ start }) => {
      const failure = await failureOf(resultOf(await start('binlogArchiveWorkflow', { cluster: 'shop' })));
      expect(failure.message).toMatch(/binlog archive of shop stopped: cluster shop: binary logging is off/);
    });
  });
});
