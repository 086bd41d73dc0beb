/**
 * Disaster-recovery drill reports: what was restored, how long each phase took (RTO), how
 * old the newest restorable point was (RPO), what was checked, and whether the drill
 * passed. Pure: the workflow builds it, an activity stores it (JSON + Markdown).
 */
import { z } from 'zod';
import { CLUSTER_NAME_PATTERN } from './identifiers';

export const DRILL_ID_PATTERN = /^drill-\d{8}T\d{6}Z$/;

export const DrillReportSchema = z.strictObject({
  formatVersion: z.literal(1),
  drillId: z.string().regex(DRILL_ID_PATTERN),
  cluster: z.string().regex(CLUSTER_NAME_PATTERN),
  startedAt: z.string(),
  finishedAt: z.string(),
  passed: z.boolean(),
  problems: z.array(z.string()),
  restoredPoint: z.string().nullable(),
  fullId: z.string().nullable(),
  chain: z.array(z.string()),
  databases: z.array(z.string()),
  rto: z.strictObject({ seconds: z.number(), targetSeconds: z.number() }),
  rpo: z.strictObject({ seconds: z.number().nullable(), targetSeconds: z.number() }),
  phases: z.array(z.strictObject({ name: z.string(), seconds: z.number() })),
  checks: z.array(z.strictObject({ what: z.string(), ok: z.boolean(), detail: z.string() })),
  workflow: z.strictObject({ workflowId: z.string(), runId: z.string() }),
});
export type DrillReport = z.infer<typeof DrillReportSchema>;
export type DrillPhase = DrillReport['phases'][number];


function human(seconds: number | null): string {
  if (seconds === null) return 'unknown';
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}

export function drillMarkdown(r: DrillReport): string {
  const lines = [
    `# DR drill ${r.drillId} of ${r.cluster}: ${r.passed ? 'PASSED' : 'FAILED'}`,
    '',
    `- Started ${r.startedAt}, finished ${r.finishedAt} (workflow \`${r.workflow.workflowId}\`)`,
    `- Restored point: ${r.restoredPoint ?? 'none'} from full ${r.fullId ?? '-'}${r.chain.length ? ` + ${r.chain.join(', ')}` : ''}`,
    `- Databases: ${r.databases.join(', ') || '-'}`,
    `- **RTO** ${human(r.rto.seconds)} (target ${human(r.rto.targetSeconds)}) — **RPO** ${human(r.rpo.seconds)} (target ${human(r.rpo.targetSeconds)})`,
    '',
    '## Phases',
    '',
    '| phase | seconds |',
    '|---|---:|',
    ...r.phases.map((p) => `| ${p.name} | ${p.seconds.toFixed(1)} |`),
    '',
    '## Checks',
    '',
    ...r.checks.map((c) => `- ${c.ok ? '✅' : '❌'} ${c.what}: ${c.detail}`),
  ];
  if (r.problems.length > 0) lines.push('', '## What broke', '', ...r.problems.map((p) => `- ${p}`));
  return lines.join('\n') + '\n';
}
