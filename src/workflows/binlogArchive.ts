/**
 * Continuous binlog archiving of one cluster (id binlog-archive/<cluster>), so that losing
 * the primary loses seconds, not the hours since the last incremental:
 *
 *   1. stream the server's binary log into the repository for a while (one activity run,
 *      heartbeating its position; a worker that dies is replaced and the next attempt
 *      resumes where the published segments end, without a hole or a repeated event)
 *   2. when the stream cannot continue its timeline (binlogs purged before they were
 *      archived, another server, a position that went backwards), alert and start a new one
 *   3. repeat; pause, resume and stop by signal (who and why are in the history); continue
 *      as new before the history grows
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { z } from 'zod';
import type { BinlogArchiveActivities } from '../activities';
import { failureType, Failure, innermostMessage, NON_RETRYABLE_TYPES } from '../domain/failures';
import { ArchiveControlSchema, BinlogArchiveInputSchema, parseInput } from '../domain/inputs';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { accept } from './boundary';

export type BinlogArchiveInput = z.input<typeof BinlogArchiveInputSchema>;
type Control = z.infer<typeof ArchiveControlSchema>;

export const pauseArchive = defineSignal<[Control]>('pause');
export const resumeArchive = defineSignal<[Control]>('resume');
export const stopArchive = defineSignal<[Control]>('stop');

export interface BinlogArchiveState {
  cluster: string;
  paused: boolean;
  pausedBy: string | null;
  stopping: boolean;
  timeline: string | null;
  file: string | null;
  position: number | null;
  coveredUntil: string | null;
  runs: number;
  lastError: string | null;
}
export const archiveState = defineQuery<BinlogArchiveState>('state');

const stream = proxyActivities<BinlogArchiveActivities>({
  // A run streams for clusters[].binlogArchive.runFor (at most 4 h) and then returns.
  startToCloseTimeout: '5 hours',
  // A worker that died is noticed within this and the stream continues on another.
  heartbeatTimeout: '20 seconds',
  // Pausing waits for the stream to really stop: two streams with one replica id would evict each other.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  // No attempt limit: a server that is down is waited for (the RPO alert says so), at most 30 s apart.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

const RUNS_PER_HISTORY = 48;

export async function binlogArchiveWorkflow(raw: BinlogArchiveInput): Promise<BinlogArchiveState> {
  const input = accept(BinlogArchiveInputSchema, raw, 'binlog archive');
  const state: BinlogArchiveState = {
    cluster: input.cluster,
    paused: input.paused ?? false,
    pausedBy: input.pausedBy ?? null,
    stopping: false,
    timeline: null,
    file: null,
    position: null,
    coveredUntil: null,
    runs: 0,
    lastError: null,
  };
  let running: CancellationScope | null = null;
  const control = (what: string, rawControl: unknown): Control | null => {
    const parsed = parseInput(ArchiveControlSchema, rawControl, `${what} signal`);
    return parsed.ok ? parsed.value : null;
  };
  setHandler(pauseArchive, (c) => {
    const ok = control('pause', c);
    if (!ok) return;
    state.paused = true;
    state.pausedBy = ok.by;
    running?.cancel();
  });
  setHandler(resumeArchive, (c) => {
    if (!control('resume', c)) return;
    state.paused = false;
    state.pausedBy = null;
  });
  setHandler(stopArchive, (c) => {
    if (!control('stop', c)) return;
    state.stopping = true;
    running?.cancel();
  });
  setHandler(archiveState, () => state);
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'binlog-archive' },
  ]);

  let newTimeline: string | null = null;
  for (;;) {
    if (state.stopping) break;
    if (state.paused) {
      setCurrentDetails(`**binlog archive** of \`${input.cluster}\`: **paused** by ${state.pausedBy ?? '?'} at ${state.file ?? '?'}:${state.position ?? '?'}`);
      await condition(() => !state.paused || state.stopping);
      continue;
    }
    setCurrentDetails(
      `**binlog archive** of \`${input.cluster}\`: streaming` +
        (state.file ? ` from ${state.timeline} ${state.file}:${state.position}, complete up to ${state.coveredUntil ?? '-'}` : ''),
    );
    const scope = new CancellationScope();
    running = scope;
    try {
      const r = await scope.run(() => stream.archiveBinlogs({ cluster: input.cluster, newTimeline }));
      newTimeline = null;
      Object.assign(state, { timeline: r.timeline, file: r.file, position: r.position, coveredUntil: r.coveredUntil ?? state.coveredUntil, lastError: null });
    } catch (error) {
      if (isCancellation(error) && (state.paused || state.stopping)) continue;
      if (isCancellation(error)) throw error;
      if (failureType(error) === Failure.BinlogArchiveGap) {
        // The next run starts a new timeline (and alerts); the old one stays readable up to the gap.
        newTimeline = innermostMessage(error);
        state.lastError = newTimeline;
        continue;
      }
      state.lastError = innermostMessage(error);
      throw ApplicationFailure.nonRetryable(`binlog archive of ${input.cluster} stopped: ${state.lastError}`, failureType(error) ?? Failure.Config);
    } finally {
      running = null;
    }
    state.runs += 1;
    if (state.runs >= RUNS_PER_HISTORY || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof binlogArchiveWorkflow>({ cluster: input.cluster, ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}), paused: state.paused, pausedBy: state.pausedBy });
    }
  }
  setCurrentDetails(`**binlog archive** of \`${input.cluster}\`: stopped at ${state.file ?? '?'}:${state.position ?? '?'}`);
  return state;
}
