/**
 * Which backups a restore needs: the newest full at or before the target, then the
 * shortest chain after it (a differential, then incrementals) that covers the target.
 * Refuses with the restorable window when the target is outside it. Pure.
 *
 * Times are conservative: a full's snapshot is known to be no later than its finishedAt,
 * and a binlog backup holds every transaction committed before its startedAt (it flushed
 * the binary log after starting).
 */
import { archiveContinuing, type ArchivedFile, type ArchivedTimeline } from './binlogArchive';
import { binlogNumber, nextBinlogName, restoreChainFor, type ChainState } from './chain';
import { coverageEnd, totalStoredBytes, type Manifest } from './manifest';
import type { ChunkRange } from './parallelDump';
import { describeTarget, stopDatetimeFor, type RestoreTarget } from './restoreTarget';
import { fullKindReason, type PhysicalFormat, type RestoreSite } from './physical';
import { mysqlMax, mysqlSubset, parseGtidTarget, parseMysqlGtidSet } from './gtid';

export type ResolvedTarget = Exclude<RestoreTarget, { kind: 'beforeMatching' }>;

export type ReplayStop =
  | { kind: 'datetime'; value: string }
  | { kind: 'position'; file: string; position: number }
  | { kind: 'gtid'; gtid: string }
  | { kind: 'end' };

export interface RestorePlan {
  cluster: string;
  database: string;
  target: ResolvedTarget;
  full: {
    id: string;
    path: string;
    /** The dump artifact; for a chunked full, its schema artifact. */
    artifact: string;
    product: 'mariadb' | 'mysql';
    tables: string[];
    snapshot: { file: string; position: number; gtidSet: string | null };
    /** A chunked full: its triggers artifact and this database's chunks (absent: one dump). */
    parallel?: { triggers: string; chunks: Array<{ table: string; artifact: string; rows: number; range: ChunkRange | null }> };
    /** A physical full: the server's files in one artifact (a restore starts a server on them). */
    physical?: {
      format: PhysicalFormat;
      artifact: string;
      rawSha256: string;
      rawSize: number;
      serverVersion: string;
      /** Physical incrementals prepared onto it, in order (the replay starts after the last). */
      deltas?: Array<{ id: string; path: string; artifact: string; rawSha256: string; rawSize: number }>;
    };
  };
  /** Why this full (physical or logical), in a sentence. */
  why?: string;
  /** Binlog backups replayed after the full, in order. */
  chain: Array<{ id: string; type: 'incremental' | 'differential' }>;
  /**
   * Files to replay, in order, and the backup that holds each; a file from the continuous
   * archive names its timeline and the segments that make it up, in order.
   */
  binlogs: Array<PlannedBinlog>;
  /** The archive timeline the replay continues in after the backups, if any. */
  archive?: { timeline: string; files: number; coveredUntil: string | null } | null;
  start: { file: string; position: number; gtidSet: string | null };
  stop: ReplayStop;
  window: RestoreWindow;
  storedBytes: number;
}

export type PlannedBinlog =
  | { backupId: string; path: string; file: string; artifact: string }
  | { timeline: string; file: string; segments: Array<{ start: number; end: number; artifact: string; rawSha256: string }> };

export interface RestoreWindow {
  from: string | null;
  to: string | null;
}

export type PlanOutcome = { ok: true; plan: RestorePlan } | { ok: false; reason: string; window: RestoreWindow };

export interface RestorePlanInput {
  cluster: string;
  database: string;
  target: ResolvedTarget;
  backups: ReadonlyArray<{ manifest: Manifest; relativePath: string }>;
  chainState: ChainState | null;
  now: Date;
  /** The continuous binlog archive, as assembled from the repository (none: backups only). */
  archive?: readonly ArchivedTimeline[];
  /**
   * Where the restore goes: a live server takes only logical fulls (the default); a server
   * of the restore's own (a drill's) takes physical ones too.
   */
  site?: RestoreSite;
}

function positionKey(file: string, position: number): [number, number] {
  return [binlogNumber(file)?.number ?? -1, position];
}

function atOrBefore(a: [number, number], b: [number, number]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);
}

function gtidSeq(set: string | null | undefined, domain: number): number | null {
  for (const part of (set ?? '').split(',')) {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(part.trim());
    if (m && Number(m[1]) === domain) return Number(m[3]);
  }
  return null;
}

/** The newest chain of a full (full, differential, incrementals) and the file replay would continue in after it. */
function newestChain(backups: readonly Manifest[], full: Manifest): { chain: Manifest[]; nextFile: string } {
  const members = backups.filter((m) => m.baseFullId === full.id && m.binlogs);
  const newest = members[members.length - 1];
  let chain = newest ? restoreChainFor(backups, newest) : [full];
  if (chain[0]?.id !== full.id) chain = [full];
  const last = chain[chain.length - 1] as Manifest;
  return { chain, nextFile: last.binlogs ? nextBinlogName(last.binlogs.endFile) : full.snapshot!.file };
}

/** The times a restore can reach for this database with these backups (and the archive after them). */
export function restorableWindow(backups: readonly Manifest[], database: string, archive: readonly ArchivedTimeline[] = []): RestoreWindow {
  const fulls = backups.filter((b) => b.type === 'full' && b.snapshot && b.databases.includes(database));
  if (fulls.length === 0) return { from: null, to: null };
  const from = fulls.map((f) => f.finishedAt).sort()[0] ?? null;
  const ids = new Set(fulls.map((f) => f.id));
  const ends = [
    ...fulls.map((f) => f.finishedAt),
    ...backups.filter((b) => b.baseFullId && ids.has(b.baseFullId) && b.binlogs).map((b) => b.startedAt),
  ];
  for (const full of fulls) {
    const ext = archiveContinuing(archive, full, newestChain(backups, full).nextFile);
    if (ext?.timeline.coveredUntil) ends.push(ext.timeline.coveredUntil);
  }
  ends.sort();
  return { from, to: ends[ends.length - 1] ?? null };
}

/** Does the archive after a chain reach the target? */
function archiveReaches(files: readonly ArchivedFile[], coveredUntil: string | null, t: ResolvedTarget, snapshotGtids: string | null): boolean {
  switch (t.kind) {
    case 'latest':
      return true;
    case 'time':
      return coveredUntil !== null && coveredUntil >= t.at;
    case 'position':
      return files.some((f) => f.file === t.file && f.size >= t.position);
    case 'gtid': {
      const g = parseGtidTarget(t.gtid).target;
      const seen = files.flatMap((f) => f.gtids);
      if (g.flavor === 'mariadb') return seen.some((x) => x.source === `${g.domain}-${g.server}` && Number(x.last.split('-')[2]) >= g.sequence);
      const snapshot = parseMysqlGtidSet(snapshotGtids ?? '');
      return [...g.set.keys()].every((uuid) => {
        const wanted = mysqlMax(g.set, uuid);
        if (wanted <= mysqlMax(snapshot, uuid)) return true;
        return seen.some((x) => x.source.toLowerCase() === uuid && Number(x.last.split(':')[1]) >= wanted);
      });
    }
    default:
      return false;
  }
}

/** A physical full's incrementals, in order: each the next one's parent, every one with its artifact and position. */
function physicalDeltas(backups: readonly Manifest[], full: Manifest): Manifest[] {
  const out: Manifest[] = [];
  let parent = full.id;
  for (;;) {
    const next = backups.find((m) => m.type === 'incremental' && m.physical && m.parentId === parent && m.baseFullId === full.id && m.snapshot);
    if (!next || !next.artifacts.some((a) => a.name === next.physical!.artifact)) return out;
    out.push(next);
    parent = next.id;
  }
}

export function planRestore(input: RestorePlanInput): PlanOutcome {
  const site = input.site ?? 'live-server';
  const all = input.backups.map((b) => b.manifest);
  // A physical full is a whole instance: into a live server only logical fulls (and their chains) go.
  const manifests = site === 'live-server' ? all.filter((m) => !m.physical) : all;
  const where = new Map(input.backups.map((b) => [b.manifest.id, b.relativePath]));
  const archive = input.archive ?? [];
  const window = restorableWindow(manifests, input.database, archive);
  const t = input.target;
  const fulls = manifests
    .filter((b) => b.type === 'full' && b.snapshot && b.databases.includes(input.database))
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  if (fulls.length === 0 && site === 'live-server' && all.some((m) => m.physical && m.databases.includes(input.database))) {
    return {
      ok: false,
      reason: `database ${input.database} of cluster ${input.cluster} has only physical fulls: ${fullKindReason('live-server', 'physical', null)}; restore it in a drill (dbops drill run), or take a logical full (dbops backup full --engine dump)`,
      window,
    };
  }
  if (fulls.length === 0) {
    const known = [...new Set(manifests.flatMap((m) => m.databases))].sort();
    return { ok: false, reason: `no full backup of database ${input.database} in cluster ${input.cluster}${known.length ? ` (backed-up databases: ${known.join(', ')})` : ''}`, window };
  }
  if (t.kind === 'time' && Date.parse(t.at) > input.now.getTime()) {
    return { ok: false, reason: `the target ${t.at} is in the future`, window };
  }

  const fullOk = (f: Manifest): boolean => {
    // A copy whose own point is only known to lie before `until` must not be past the target.
    const s = f.physical?.until ?? f.snapshot!;
    switch (t.kind) {
      case 'time':
        return f.finishedAt <= t.at;
      case 'position':
        return atOrBefore(positionKey(s.file, s.position), positionKey(t.file, t.position));
      case 'gtid': {
        const g = parseGtidTarget(t.gtid).target;
        if (g.flavor === 'mariadb') {
          const seq = gtidSeq(s.gtidSet, g.domain);
          return seq === null || seq < g.sequence;
        }
        // MySQL: every transaction in the snapshot must be one the target wants.
        return s.gtidSet === null || mysqlSubset(parseMysqlGtidSet(s.gtidSet), g.set);
      }
      default:
        return true;
    }
  };
  const covers = (m: Manifest, full: Manifest): boolean => {
    const end = coverageEnd(m)!;
    switch (t.kind) {
      case 'time':
        return m.startedAt >= t.at;
      case 'position':
        return atOrBefore(positionKey(t.file, t.position), positionKey(end.file, end.position));
      case 'gtid': {
        const g = parseGtidTarget(t.gtid).target;
        if (g.flavor === 'mariadb') {
          return (m.binlogs?.gtids ?? []).some((x) => x.source === `${g.domain}-${g.server}` && Number(x.last.split('-')[2]) >= g.sequence);
        }
        // MySQL: each source the target wants beyond the snapshot reaches its last wanted transaction.
        const snapshot = parseMysqlGtidSet(full.snapshot?.gtidSet ?? '');
        return [...g.set.keys()].every((uuid) => {
          const wanted = mysqlMax(g.set, uuid);
          if (wanted <= mysqlMax(snapshot, uuid)) return true;
          const seen = (m.binlogs?.gtids ?? []).find((x) => x.source.toLowerCase() === uuid);
          return seen !== undefined && Number(seen.last.split(':')[1]) >= wanted;
        });
      }
      default:
        return true;
    }
  };

  for (const full of fulls.filter(fullOk)) {
    const members = manifests.filter((m) => m.baseFullId === full.id && m.binlogs);
    let candidates = members.filter((m) => covers(m, full));
    if (t.kind === 'latest') candidates = members.slice(-1);
    const chains = candidates.map((c) => restoreChainFor(manifests, c)).filter((c) => c[0]?.id === full.id);
    chains.sort((a, b) => a.length - b.length || a.reduce((n, m) => n + totalStoredBytes(m), 0) - b.reduce((n, m) => n + totalStoredBytes(m), 0));
    let best = chains[0] ?? (t.kind === 'latest' ? [full] : null);
    // Beyond the backups: the continuous archive, when it continues this full's newest chain on the same server.
    let archived: { timeline: ArchivedTimeline; files: ArchivedFile[] } | null = null;
    if (!best || t.kind === 'latest') {
      const newest = newestChain(manifests, full);
      const ext = archiveContinuing(archive, full, newest.nextFile);
      if (ext && ext.files.length > 0 && archiveReaches(ext.files, ext.timeline.coveredUntil, t, full.snapshot?.gtidSet ?? null)) {
        best = newest.chain;
        archived = ext;
      }
    }
    if (!best) continue;

    const chain = best.slice(1);
    const binlogs: RestorePlan['binlogs'] = [];
    const seen = new Set<string>();
    for (const m of chain) {
      m.binlogs!.files.forEach((file, i) => {
        if (seen.has(file)) return;
        seen.add(file);
        binlogs.push({ backupId: m.id, path: where.get(m.id) ?? '', file, artifact: m.artifacts[i]?.name ?? file });
      });
    }
    for (const f of archived?.files ?? []) {
      if (seen.has(f.file)) continue;
      seen.add(f.file);
      binlogs.push({ timeline: archived!.timeline.timeline.timeline, file: f.file, segments: f.segments });
    }
    let stop: ReplayStop = { kind: 'end' };
    if (t.kind === 'time') stop = { kind: 'datetime', value: stopDatetimeFor(t.at) };
    if (t.kind === 'gtid') stop = { kind: 'gtid', gtid: t.gtid };
    if (t.kind === 'position') {
      const cut = binlogs.findIndex((b) => b.file === t.file);
      if (cut === -1 && !(t.file === full.snapshot!.file && t.position === full.snapshot!.position)) {
        return { ok: false, reason: `${t.file} is not in the backups after full ${full.id}`, window };
      }
      binlogs.splice(cut + 1);
      stop = { kind: 'position', file: t.file, position: t.position };
    }
    const artifact = full.parallel ? full.parallel.schema : full.physical ? full.physical.artifact : full.artifacts[0]!.name;
    const files = full.physical ? full.artifacts.find((a) => a.name === full.physical!.artifact) : undefined;
    // Physical incrementals of this full whose copy is at or before the target: prepared onto it, and the replay starts after the last.
    const deltas: Manifest[] = [];
    for (const d of full.physical && files ? physicalDeltas(manifests, full) : []) {
      if (!fullOk(d)) break;
      deltas.push(d);
    }
    const physical =
      full.physical && files
        ? {
            format: full.physical.format,
            artifact: files.name,
            rawSha256: files.rawSha256,
            rawSize: files.rawSize,
            serverVersion: full.physical.serverVersion,
            ...(deltas.length
              ? {
                  deltas: deltas.map((d) => {
                    const a = d.artifacts.find((x) => x.name === d.physical!.artifact)!;
                    return { id: d.id, path: where.get(d.id) ?? '', artifact: a.name, rawSha256: a.rawSha256, rawSize: a.rawSize };
                  }),
                }
              : {}),
          }
        : undefined;
    const from = deltas[deltas.length - 1]?.snapshot ?? full.snapshot!;
    if (deltas.length) {
      // The binlogs before the last copy's file are in the copy already.
      const first = binlogNumber(from.file)?.number ?? 0;
      for (let i = binlogs.length - 1; i >= 0; i--) if ((binlogNumber(binlogs[i]!.file)?.number ?? 0) < first) binlogs.splice(i, 1);
    }
    const why = fullKindReason(site, physical ? 'physical' : 'logical', fulls.some((f) => f.physical) ? 'physical' : null);
    const parallel = full.parallel
      ? {
          triggers: full.parallel.triggers,
          chunks: full.parallel.chunks.filter((c) => c.database === input.database).map((c) => ({ table: c.table, artifact: c.artifact, rows: c.rows, range: c.range })),
        }
      : undefined;
    return {
      ok: true,
      plan: {
        cluster: input.cluster,
        database: input.database,
        target: t,
        full: {
          id: full.id,
          path: where.get(full.id) ?? '',
          artifact,
          product: full.server.product,
          tables: full.tables.filter((x) => x.database === input.database).map((x) => x.table),
          snapshot: full.snapshot!,
          ...(parallel ? { parallel } : {}),
          ...(physical ? { physical } : {}),
        },
        why,
        chain: chain.map((m) => ({ id: m.id, type: m.type as 'incremental' | 'differential' })),
        binlogs,
        start: { file: from.file, position: from.position, gtidSet: from.gtidSet },
        stop,
        window,
        storedBytes: [...best, ...deltas].reduce((n, m) => n + totalStoredBytes(m), 0),
        archive: archived ? { timeline: archived.timeline.timeline.timeline, files: archived.files.length, coveredUntil: archived.timeline.coveredUntil } : null,
      },
    };
  }

  const broken = input.chainState ? `; the chain is broken since ${input.chainState.brokenAt} (${input.chainState.reason})` : '';
  return {
    ok: false,
    reason: `no backups cover ${describeTarget(t)} for database ${input.database}: the restorable window is ${window.from ?? '?'} … ${window.to ?? '?'}${broken}`,
    window,
  };
}
