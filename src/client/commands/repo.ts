/** dbops repo …: the repository as a whole. `verify` re-reads every backup in it and reports what is wrong. */
import type { Command } from 'commander';
import { countsLine, problemLine, verifySummary } from '../../domain/repoVerify';
import type { RepoVerifyResult } from '../../workflows/repoVerify';
import { progressWanted, resultWithProgress } from '../progress';
import { startRepoVerify } from '../repoVerify';
import { configOf, exit, io, jsonWanted, knownCluster, operatorOf, withClient } from './shared';

/** The report as a person reads it: per cluster the verdict, every problem, what was not judged, where the report is. */
export function repoVerifyLines(result: RepoVerifyResult): string[] {
  const lines: string[] = [];
  result.reports.forEach((r, i) => {
    lines.push(`${verifySummary(r)}; in ${r.repository}`);
    for (const p of r.problems) lines.push(`  ${problemLine(p)}`);
    for (const u of r.unverified) lines.push(`  not verified: ${u.backupId}: ${u.reason}`);
    for (const n of r.notes) lines.push(`  note: ${n}`);
    lines.push(`  report: ${result.files[i] ?? '?'}`);
  });
  if (result.reports.length === 0) lines.push('no clusters configured: nothing verified');
  return lines;
}

export function registerRepo(program: Command): void {
  const repo = program.command('repo').description('the repository as a whole: verify every backup in it');

  repo
    .command('verify')
    .description('re-read every artifact of every backup (size, sha256, decryption, decompression), report corrupt, missing and orphaned objects; exit 1 and the problems if it is not clean')
    .option('--cluster <name>', 'one cluster (default: every configured cluster)')
    .option('--wait', 'wait for the report and print it')
    .option('--as <name>', 'who asks (default: $USER)')
    .addHelpText('after', '\nExample:\n  dbops repo verify --cluster shop --wait')
    .action(async (options: { cluster?: string; wait?: boolean; as?: string }, command: Command) => {
      const cfg = configOf(command);
      const json = jsonWanted(command);
      if (options.cluster !== undefined) knownCluster(cfg, options.cluster);
      await withClient(cfg, async (client) => {
        const handle = await startRepoVerify(client, cfg, { ...(options.cluster !== undefined ? { cluster: options.cluster } : {}), requestedBy: operatorOf(options) });
        if (!options.wait) {
          io.out(json ? JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }) : `started ${handle.workflowId}`);
          return;
        }
        if (!json) io.out(`started ${handle.workflowId}; waiting`);
        const result = await resultWithProgress<RepoVerifyResult>(handle, progressWanted(json));
        if (json) io.out(JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ...result }, null, 2));
        else for (const line of repoVerifyLines(result)) io.out(line);
        if (!result.clean) {
          for (const r of result.reports.filter((x) => !x.clean)) {
            io.err(`dbops: the repository of ${r.cluster} is NOT clean: ${[countsLine(r.counts), r.unverified.length > 0 ? `${r.unverified.length} backup(s) not verified` : ''].filter((x) => x !== '').join(', ')}`);
            for (const p of r.problems) io.err(`dbops:   ${problemLine(p)}`);
            for (const u of r.unverified) io.err(`dbops:   not verified: ${u.backupId}: ${u.reason}`);
          }
          exit.code = 1;
        }
      });
    });
}
