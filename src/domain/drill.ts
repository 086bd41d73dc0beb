/**
 * Disaster-recovery drill reports: what was restored, how long each phase took (RTO), how
 * old the newest restorable point was (RPO), what was checked, and whether the drill
 * passed. Pure: the workflow builds it, an activity stores it (JSON + Markdown).
 */
export interface DrillPhase {
  name: string;
  seconds: number;
}

export interface DrillReport {
  formatVersion: 1;
  drillId: string;
  cluster: string;
  startedAt: string;
  finishedAt: string;
  passed: boolean;
  problems: string[];
  restoredPoint: string | null;
  fullId: string | null;
  chain: string[];
  databases: string[];
  rto: { seconds: number; targetSeconds: number };
  rpo: { seconds: number | null; targetSeconds: number };
  phases: DrillPhase[];
  checks: Array<{ what: string; ok: boolean; detail: string }>;
  workflow: { workflowId: string; runId: string };
}


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
