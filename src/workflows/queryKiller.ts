/**
 * The slow-query killer, one sweep per run (the schedule starts one a minute and skips a
 * run while the previous one is still going), as a DBA runs pt-kill by hand:
 *   1. read the processlist once and choose the victims under the cluster's policy;
 *   2. kill each (KILL QUERY by default), re-checking first that it still runs the
 *      statement it was chosen for; a dry run only checks;
 *   3. when anything matched: file the report in the repository and send the warning.
 * The run's result (and so the Temporal UI) lists every victim by digest, user, host and
 * duration; query text never enters the history.
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { z } from 'zod';
import type { QueryKillerActivities } from '../activities';
import { NON_RETRYABLE_TYPES } from '../domain/failures';
import { QueryKillerInputSchema } from '../domain/inputs';
import { compactUtc } from '../domain/naming';
import { killAlert, killSummary, type KillReport } from '../domain/queryKiller';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { accept } from './boundary';
import { notify } from './notify';

// Short: a sweep that cannot finish within a minute would only overlap the next one.
const a = proxyActivities<QueryKillerActivities>({ startToCloseTimeout: '45 seconds', retry: { maximumAttempts: 3, initialInterval: '2s', nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });

export type QueryKillerInput = z.input<typeof QueryKillerInputSchema>;

export interface QueryKillerResult {
  report: KillReport;
  /** Where the report is stored; null when nothing matched (nothing is filed then). */
  reportKey: string | null;
}

export async function queryKillerWorkflow(raw: QueryKillerInput): Promise<QueryKillerResult> {
  const input = accept(QueryKillerInputSchema, raw, 'query killer');
  const info = workflowInfo();
  upsertSearchAttributes([
    { key: SA_CLUSTER, value: input.cluster },
    { key: SA_OPERATION, value: 'query-killer' },
  ]);
  const startedAt = new Date();
  setCurrentDetails(`**slow-query killer** on \`${input.cluster}\`: reading the processlist`);
  const found = await a.findSlowQueries({ cluster: input.cluster, dryRun: input.dryRun });
  const dryRun = found.policy.dryRun;
  let records: KillReport['records'] = [];
  if (found.victims.length > 0) {
    setCurrentDetails(`**slow-query killer** on \`${input.cluster}\`: ${dryRun ? 'checking' : 'killing'} ${found.victims.length} statement(s) over ${found.policy.busySeconds} s`);
    records = (await a.killSlowQueries({ cluster: input.cluster, dryRun, victims: found.victims })).records;
  }
  const report: KillReport = {
    formatVersion: 1,
    cluster: input.cluster,
    runKey: `${compactUtc(startedAt)}-${info.runId.replace(/-/g, '').slice(0, 8)}`,
    observedAt: found.observedAt,
    finishedAt: new Date().toISOString(),
    dryRun,
    mode: found.policy.mode,
    busySeconds: found.policy.busySeconds,
    sessions: found.sessions,
    spared: found.spared,
    records,
    requestedBy: input.requestedBy ?? null,
    workflow: { workflowId: info.workflowId, runId: info.runId },
  };
  let reportKey: string | null = null;
  if (records.length > 0) {
    reportKey = (await a.storeKillReport({ report })).key;
    const alert = killAlert(report, reportKey);
    if (alert) await notify(alert);
  }
  setCurrentDetails(`**${killSummary(report)}**${records.length ? '\n\n' + records.map((r) => `- ${r.outcome}: session ${r.id}, ${r.user}@${r.host}, ${r.timeSeconds} s, \`${r.digestText.slice(0, 160)}\``).join('\n') : ''}`);
  return { report, reportKey };
}
