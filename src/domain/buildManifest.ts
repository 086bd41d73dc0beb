/**
 * Assembling a full backup's manifest from what the activities reported. Pure, so the
 * workflow can do it deterministically and the tests can check it without servers.
 */
import type { BinlogFacts, GtidInterval } from './binlogScanner';
import type { DumpFacts } from './dumpScanner';
import type { Artifact, ManifestDraft, ServerIdentity } from './manifest';
import type { ParallelLayout } from './parallelDump';
import type { PhysicalLayout } from './physical';

export interface FullBackupFacts {
  id: string;
  type: 'full' | 'emergency' | 'schema';
  cluster: string;
  startedAt: Date;
  finishedAt: Date;
  server: ServerIdentity;
  tool: { name: string; version: string };
  databases: string[];
  dump: DumpFacts;
  objects: { routines: number; triggers: number; events: number };
  artifact: Artifact;
  /** A parallel dump: all its artifacts (schema, chunks, triggers) and its layout. */
  parallel?: { artifacts: Artifact[]; layout: ParallelLayout };
  /** A physical full: what restoring its files needs. */
  physical?: PhysicalLayout;
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
    retentionClass: f.type === 'full' ? 'routine' : f.type,
    parentId: null,
    baseFullId: null,
    binlogs: null,
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
    artifacts: f.parallel ? f.parallel.artifacts : [f.artifact],
    parallel: f.parallel ? f.parallel.layout : null,
    ...(f.physical ? { physical: f.physical } : {}),
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

export interface BinlogBackupFacts {
  id: string;
  type: 'incremental' | 'differential';
  cluster: string;
  startedAt: Date;
  finishedAt: Date;
  server: ServerIdentity;
  tool: { name: string; version: string };
  parentId: string;
  baseFullId: string;
  startFile: string;
  startPosition: number;
  copied: Array<{ artifact: Artifact; facts: BinlogFacts; file: string }>;
  workflow: { workflowId: string; runId: string };
  requestedBy: string | null;
  reason: string | null;
}

/** An incremental or differential backup's manifest: the binlog range it covers, file by file. */
export function buildBinlogManifest(f: BinlogBackupFacts): ManifestDraft {
  const last = f.copied[f.copied.length - 1];
  if (!last) throw new Error('a binlog backup needs at least one file');
  const times = f.copied.flatMap((c) => [c.facts.firstEventTime, c.facts.lastEventTime]).filter((t): t is string => t !== null);
  const gtids = new Map<string, GtidInterval>();
  for (const c of f.copied) {
    for (const g of c.facts.gtids) {
      const seen = gtids.get(g.source);
      if (seen) seen.last = g.last;
      else gtids.set(g.source, { ...g });
    }
  }
  return {
    formatVersion: 1,
    id: f.id,
    type: f.type,
    cluster: f.cluster,
    retentionClass: 'routine',
    parentId: f.parentId,
    baseFullId: f.baseFullId,
    startedAt: f.startedAt.toISOString(),
    finishedAt: f.finishedAt.toISOString(),
    durationMs: Math.max(0, f.finishedAt.getTime() - f.startedAt.getTime()),
    server: f.server,
    tool: f.tool,
    databases: [],
    snapshot: null,
    binlogs: {
      startFile: f.startFile,
      startPosition: f.startPosition,
      endFile: last.file,
      endPosition: last.facts.endPosition,
      files: f.copied.map((c) => c.file),
      firstEventTime: times.length > 0 ? (times.reduce((a, b) => (a < b ? a : b)) as string) : null,
      lastEventTime: times.length > 0 ? (times.reduce((a, b) => (a > b ? a : b)) as string) : null,
      gtids: [...gtids.values()],
      transactions: f.copied.reduce((n, c) => n + c.facts.transactions, 0),
    },
    tables: [],
    objects: { views: [], routines: 0, triggers: 0, events: 0 },
    artifacts: f.copied.map((c) => c.artifact),
    parallel: null,
    workflow: f.workflow,
    requestedBy: f.requestedBy,
    reason: f.reason,
  };
}
