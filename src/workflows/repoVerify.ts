/**
 * The weekly usability check of the repository, as a DBA would run it by hand: for each
 * cluster, list the backups, re-read every one of them end to end (one activity per
 * backup, so a run that loses its worker goes on from the next backup), look for what no
 * manifest accounts for, file the report in the repository and raise the alert: critical
 * when a backup cannot be restored as it is, a warning for leftovers, info when clean.
 * A backup whose check fails outright is reported as not verified; the run goes on.
 */
import { isCancellation, patched, proxyActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { z } from 'zod';
import type { RepoVerifyActivities } from '../activities';
import { innermostMessage, NON_RETRYABLE_TYPES } from '../domain/failures';
import { RepoVerifyInputSchema } from '../domain/inputs';
import { compactUtc, formatBytes } from '../domain/naming';
import { buildVerifyReport, verifyAlert, verifySummary, VERIFY_EVENT, type ArchiveFinding, type BackupFinding, type RepoVerifyReport } from '../domain/repoVerify';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { accept } from './boundary';
import { notify } from './notify';

const quick = proxyActivities<RepoVerifyActivities>({ startToCloseTimeout: '30 minutes', retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });
// Re-reading a backup takes as long as its bytes take to come back; the heartbeat says it still moves.
const readingOptions: ActivityOptions = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10s', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
};
const reading = proxyActivities<RepoVerifyActivities>(readingOptions);

export type RepoVerifyInput = z.input<typeof RepoVerifyInputSchema>;

export interface RepoVerifyResult {
  /** Every cluster's report is clean. */
  clean: boolean;
  reports: RepoVerifyReport[];
  /** Where each report is stored, in the same order. */
  files: string[];
}

export async function repoVerifyWorkflow(raw: RepoVerifyInput): Promise<RepoVerifyResult> {
  const input = accept(RepoVerifyInputSchema, raw, 'repo verify');
  const info = workflowInfo();
  upsertSearchAttributes([...(input.cluster !== undefined ? [{ key: SA_CLUSTER, value: input.cluster }] : []), { key: SA_OPERATION, value: 'repo-verify' }]);
  const startedAt = new Date();
  const runKey = compactUtc(startedAt);
  const clusters = input.cluster !== undefined ? [input.cluster] : (await quick.listVerifyClusters({})).clusters;
  const reports: RepoVerifyReport[] = [];
  const files: string[] = [];

  for (const cluster of clusters) {
    try {
      setCurrentDetails(`**repository verify** of \`${cluster}\`: listing the backups`);
      const listing = await quick.listBackupsToVerify({ cluster });
      const total = listing.backups.reduce((n, b) => n + b.bytes, 0);
      let done = 0;
      const findings: BackupFinding[] = [];
      for (const [i, b] of listing.backups.entries()) {
        setCurrentDetails(`**repository verify** of \`${cluster}\`: re-reading backup ${i + 1} of ${listing.backups.length}, ${b.id} (${formatBytes(done)} of ${formatBytes(total)} so far)`);
        try {
          findings.push(await reading.verifyBackup.executeWithOptions({ ...readingOptions, summary: `verify ${b.id}` }, [{ cluster, backupId: b.id }]));
        } catch (error) {
          if (isCancellation(error)) throw error;
          findings.push({ id: b.id, outcome: 'unverified', reason: innermostMessage(error) });
        }
        done += b.bytes;
      }
      setCurrentDetails(`**repository verify** of \`${cluster}\`: looking for objects no manifest accounts for`);
      const { candidates } = await quick.findOrphans({ cluster });
      let archive: ArchiveFinding | null = null;
      if (patched('dbops-verify-binlog-archive')) {
        setCurrentDetails(`**repository verify** of \`${cluster}\`: re-reading the continuous binlog archive`);
        archive = await reading.verifyBinlogArchive.executeWithOptions({ ...readingOptions, summary: 'verify the binlog archive' }, [{ cluster }]);
      }
      const report = buildVerifyReport(
        { listing, findings, orphans: candidates, archive },
        { runKey, startedAt, finishedAt: new Date(), requestedBy: input.requestedBy ?? null, workflow: { workflowId: info.workflowId, runId: info.runId } },
      );
      const { key } = await quick.storeVerifyReport({ report });
      await notify(verifyAlert(report, key));
      reports.push(report);
      files.push(key);
    } catch (error) {
      if (isCancellation(error)) throw error;
      // The repository could not be read or written at all: say so loudly, then fail the run.
      await notify({ severity: 'critical', event: VERIFY_EVENT, cluster, message: `repository verify of ${cluster} could not finish: ${innermostMessage(error)}` });
      throw error;
    }
  }

  setCurrentDetails(reports.map((r) => `**${verifySummary(r)}**`).join('\n\n') || '**repository verify**: no clusters');
  return { clean: reports.every((r) => r.clean), reports, files };
}
