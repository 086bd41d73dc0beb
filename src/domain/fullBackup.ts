/**
 * Assembling a full backup's manifest from what the activities reported. Pure, so the
 * workflow can do it deterministically and the tests can check it without servers.
 */
import type { DumpFacts } from './dumpScanner';
import type { Artifact, ManifestDraft, ServerIdentity } from './manifest';

export interface FullBackupFacts {
  id: string;
  type: 'full' | 'emergency';
  cluster: string;
  startedAt: Date;
  finishedAt: Date;
  server: ServerIdentity;
  tool: { name: string; version: string };
  databases: string[];
  dump: DumpFacts;
  objects: { routines: number; triggers: number; events: number };
  artifact: Artifact;
  workflow: { workflowId: string; runId: string };
  requestedBy: string | null;
  reason: string | null;
}

export function buildFullManifest(f: FullBackupFacts): ManifestDraft {
  return {
    formatVersion: 1,
    id: f.id,
    type: f.type,
    cluster: f.cluster,
    retentionClass: f.type === 'emergency' ? 'emergency' : 'routine',
    parentId: null,
    startedAt: f.startedAt.toISOString(),
    finishedAt: f.finishedAt.toISOString(),
    durationMs: Math.max(0, f.finishedAt.getTime() - f.startedAt.getTime()),
    server: f.server,
    tool: f.tool,
    databases: f.databases,
    snapshot:
      f.dump.binlogFile !== null && f.dump.binlogPosition !== null
        ? { file: f.dump.binlogFile, position: f.dump.binlogPosition, gtidSet: f.dump.gtidSet }
        : null,
    tables: f.dump.tables,
    objects: { views: f.dump.views, routines: f.objects.routines, triggers: f.objects.triggers, events: f.objects.events },
    artifacts: [f.artifact],
    workflow: f.workflow,
    requestedBy: f.requestedBy,
    reason: f.reason,
  };
}

/** One line for the UI's current details and the CLI. */
export function describeDumpProgress(rawBytes: number, storedBytes: number, formatBytes: (n: number) => string): string {
  const ratio = rawBytes > 0 ? ((1 - storedBytes / rawBytes) * 100).toFixed(0) : '0';
  return `dumped ${formatBytes(rawBytes)}, stored ${formatBytes(storedBytes)} (${ratio}% saved)`;
}
