/**
 * Continuous binlog archiving, the pure part: what a published segment says about itself,
 * where the next run starts (or why it cannot, which is a gap), where a segment may be cut
 * (only between transactions), and which archived files continue a backup chain for a
 * restore.
 *
 * The archive is a list of timelines. A timeline is one unbroken stream from one server:
 * its files are the server's binlog files, byte for byte, each stored as contiguous
 * segments [start, end). A gap (binlogs purged before they were archived, another server,
 * a position that went backwards) closes the timeline and opens a new one, so bytes of two
 * different histories are never joined.
 */
import { z } from 'zod';
import { binlogNumber, nextBinlogName, sameServer, type ServerBinlog } from './chain';
import { ArtifactSchema, GtidIntervalSchema, ServerIdentitySchema, type Manifest, type ServerIdentity } from './manifest';
import type { GtidInterval } from './binlogScanner';
export { SegmentCutter, type SegmentFacts } from './segmentCutter';

export const TIMELINE_PATTERN = /^t\d{8}T\d{6}Z$/;
export const BINLOG_FILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.\d{1,10}$/;

export const TimelineSchema = z.strictObject({
  formatVersion: z.literal(1),
  timeline: z.string().regex(TIMELINE_PATTERN),
  server: ServerIdentitySchema,
  startFile: z.string().regex(BINLOG_FILE_PATTERN),
  startedAt: z.string(),
  /** Why this timeline began: the first run, or the gap that ended the previous one. */
  reason: z.string().max(2000),
  previous: z.string().regex(TIMELINE_PATTERN).nullable(),
  /**
   * The server's binary log is another history from here on (another server, RESET MASTER,
   * a rewritten file): a full taken before this timeline began never continues in it, even
   * where file names repeat.
   */
  newHistory: z.boolean().optional(),
});
export type Timeline = z.infer<typeof TimelineSchema>;

export const SegmentSchema = z.strictObject({
  formatVersion: z.literal(1),
  timeline: z.string().regex(TIMELINE_PATTERN),
  file: z.string().regex(BINLOG_FILE_PATTERN),
  start: z.number().int().nonnegative(),
  end: z.number().int().positive(),
  /** The segment ends with the file's last event (Rotate or Stop): the next file follows. */
  closed: z.boolean(),
  artifact: ArtifactSchema,
  events: z.number().int().nonnegative(),
  transactions: z.number().int().nonnegative(),
  firstEventTime: z.string().nullable(),
  lastEventTime: z.string().nullable(),
  gtids: z.array(GtidIntervalSchema),
  /** Every transaction the server had committed before this time is at or before `end`. */
  coveredUntil: z.string().nullable(),
  publishedAt: z.string(),
});
export type Segment = z.infer<typeof SegmentSchema>;

/** Written while the archiver runs, also when nothing new was written (an idle server is not a stale archive). */
export const ArchiveStatusSchema = z.strictObject({
  formatVersion: z.literal(1),
  timeline: z.string().regex(TIMELINE_PATTERN),
  file: z.string().regex(BINLOG_FILE_PATTERN),
  position: z.number().int().nonnegative(),
  coveredUntil: z.string().nullable(),
  updatedAt: z.string(),
});
export type ArchiveStatus = z.infer<typeof ArchiveStatusSchema>;

export function timelineId(at: Date): string {
  return `t${at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')}`;
}

/** "000000001234-000000005678": sorts in file order. */
export function segmentStem(start: number, end: number): string {
  return `${String(start).padStart(12, '0')}-${String(end).padStart(12, '0')}`;
}

export function parseSegmentStem(name: string): { start: number; end: number } | null {
  const m = /^(\d{12})-(\d{12})\./.exec(name);
  return m ? { start: Number(m[1]), end: Number(m[2]) } : null;
}

// ---------------------------------------------------------------------------------------
// Where the next run starts

export interface ArchiveTip {
  timeline: Timeline;
  /** The newest published segment of the timeline, null before the first. */
  last: Pick<Segment, 'file' | 'end' | 'closed'> | null;
}

export type ArchiveStart =
  | { action: 'resume'; timeline: string; file: string; position: number }
  | { action: 'new'; file: string; reason: string; gap: boolean; previous: string | null; newHistory: boolean };

/**
 * Decides where the stream starts. `preferred` is the file a fresh timeline starts from
 * when the server still has it (the end of the newest backup, so that the archive
 * continues the chain); otherwise the oldest file the server has.
 */
export function planArchiveStart(input: { tip: ArchiveTip | null; server: ServerIdentity; binlogs: readonly ServerBinlog[]; preferred: string | null }): ArchiveStart {
  const { tip, binlogs } = input;
  const listed = new Map(binlogs.map((b) => [b.name, b.size]));
  const oldest = binlogs[0]?.name;
  if (!oldest) throw new Error('the server lists no binary logs: enable log_bin');
  const fresh = (reason: string, gap: boolean, newHistory = false): ArchiveStart => ({
    action: 'new',
    file: input.preferred && listed.has(input.preferred) ? input.preferred : oldest,
    reason,
    gap,
    previous: tip?.timeline.timeline ?? null,
    newHistory,
  });
  if (!tip) return fresh('first archive run', false);
  const changed = sameServer(tip.timeline.server, input.server);
  if (changed) return fresh(`another server: ${changed}`, true, true);
  const last = tip.last;
  if (!last) {
    return listed.has(tip.timeline.startFile)
      ? { action: 'resume', timeline: tip.timeline.timeline, file: tip.timeline.startFile, position: 0 }
      : fresh(`${tip.timeline.startFile} was purged before anything of it was archived`, true);
  }
  const want = last.closed ? nextBinlogName(last.file) : last.file;
  const position = last.closed ? 0 : last.end;
  const size = listed.get(want);
  if (size === undefined) {
    const wantNumber = binlogNumber(want)?.number ?? -1;
    const newest = binlogNumber(binlogs[binlogs.length - 1]?.name ?? '')?.number ?? -1;
    return wantNumber > newest
      ? fresh(`the binary log went backwards: the archive is at ${last.file}:${last.end}, the server's newest is ${binlogs[binlogs.length - 1]?.name} (RESET MASTER or a restored server?)`, true, true)
      : fresh(`binary logs were purged before they were archived: ${want} is needed, the server's oldest is ${oldest}`, true);
  }
  if (size < position) return fresh(`the binary log went backwards: ${want} is ${size} bytes on the server, the archive has ${position}`, true, true);
  return { action: 'resume', timeline: tip.timeline.timeline, file: want, position };
}

// ---------------------------------------------------------------------------------------
// Coverage: "every transaction committed before T is archived"

export interface PositionSample {
  file: string;
  position: number;
  /** Taken before the server was asked: everything committed before it is at or before the position. */
  at: string;
}

export function positionAtOrBefore(a: { file: string; position: number }, b: { file: string; position: number }): boolean {
  const x = binlogNumber(a.file)?.number ?? -1;
  const y = binlogNumber(b.file)?.number ?? -1;
  return x < y || (x === y && a.position <= b.position);
}

/** The newest sample the published end has reached; samples it reached are dropped from `samples`. */
export function advanceCoverage(samples: PositionSample[], published: { file: string; position: number }): string | null {
  let covered: string | null = null;
  while (samples.length > 0 && positionAtOrBefore(samples[0] as PositionSample, published)) covered = (samples.shift() as PositionSample).at;
  return covered;
}

// ---------------------------------------------------------------------------------------
// What a restore can use

export interface ArchivedFile {
  file: string;
  /** Contiguous from 0. */
  segments: Array<{ start: number; end: number; artifact: string; rawSha256: string }>;
  size: number;
  closed: boolean;
  gtids: GtidInterval[];
  lastEventTime: string | null;
}

export interface ArchivedTimeline {
  timeline: Timeline;
  /** Contiguous files from the timeline's start file, each contiguous from byte 0. */
  files: ArchivedFile[];
  coveredUntil: string | null;
}

/**
 * Builds a timeline's usable files from its listed segments: the run of files from the
 * start file in which every file is whole from byte 0 and every file but the last was
 * closed. Anything after a hole is left out: a restore never replays across it.
 */
export function assembleTimeline(timeline: Timeline, segments: readonly Segment[], status: ArchiveStatus | null): ArchivedTimeline {
  const byFile = new Map<string, Segment[]>();
  for (const s of segments) {
    if (s.timeline !== timeline.timeline) continue;
    const list = byFile.get(s.file) ?? [];
    list.push(s);
    byFile.set(s.file, list);
  }
  const files: ArchivedFile[] = [];
  let coveredUntil: string | null = null;
  // From the oldest file still stored: retention removes the files no kept full can start in.
  const stored = [...byFile.keys()].sort((a, b) => (binlogNumber(a)?.number ?? -1) - (binlogNumber(b)?.number ?? -1));
  let name = stored[0] ?? timeline.startFile;
  for (;;) {
    const list = (byFile.get(name) ?? []).sort((a, b) => a.start - b.start);
    let size = 0;
    const used: Segment[] = [];
    for (const s of list) {
      if (s.start !== size) break;
      used.push(s);
      size = s.end;
    }
    if (used.length === 0) break;
    const closed = used[used.length - 1]?.closed ?? false;
    const gtids = new Map<string, GtidInterval>();
    for (const s of used) {
      for (const g of s.gtids) {
        const have = gtids.get(g.source);
        if (have) have.last = g.last;
        else gtids.set(g.source, { ...g });
      }
      if (s.coveredUntil && (coveredUntil === null || s.coveredUntil > coveredUntil)) coveredUntil = s.coveredUntil;
    }
    const lastEventTime = used.map((s) => s.lastEventTime).filter((t): t is string => t !== null).pop() ?? null;
    files.push({ file: name, segments: used.map((s) => ({ start: s.start, end: s.end, artifact: s.artifact.name, rawSha256: s.artifact.rawSha256 })), size, closed, gtids: [...gtids.values()], lastEventTime });
    if (!closed) break;
    name = nextBinlogName(name);
  }
  // The status file says how far an idle stream is known to be complete; it counts only if it is within what is published.
  const tail = files[files.length - 1];
  if (status && tail && status.timeline === timeline.timeline && status.coveredUntil && positionAtOrBefore({ file: status.file, position: status.position }, { file: tail.file, position: tail.size })) {
    if (coveredUntil === null || status.coveredUntil > coveredUntil) coveredUntil = status.coveredUntil;
  }
  return { timeline, files, coveredUntil };
}

/**
 * The archived files that continue a chain ending at `fromFile` (the file replay continues
 * in), on the same server and in the same history as the full: null when no timeline holds
 * that file from byte 0 onwards.
 */
export function archiveContinuing(
  timelines: readonly ArchivedTimeline[],
  full: { server: ServerIdentity; finishedAt: string },
  fromFile: string,
): { timeline: ArchivedTimeline; files: ArchivedFile[] } | null {
  for (const t of [...timelines].reverse()) {
    if (sameServer(t.timeline.server, full.server)) continue;
    if (t.timeline.newHistory && full.finishedAt < t.timeline.startedAt) continue;
    const at = t.files.findIndex((f) => f.file === fromFile);
    if (at === -1) continue;
    return { timeline: t, files: t.files.slice(at) };
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Retention

export interface ArchiveListing {
  timeline: Timeline;
  files: string[];
}

export type ArchivePrune = { timeline: string; file: string | null; reason: string };

/**
 * What of the archive no kept full backup can use: a replay starts at a full's snapshot, so
 * files before the oldest kept full's snapshot file (of the same server) are dead weight,
 * and so is a closed timeline no kept full belongs to. The newest timeline is never removed
 * whole (the stream writes there; its first full may not exist yet).
 */
export function prunableArchive(listing: readonly ArchiveListing[], keptFulls: ReadonlyArray<Pick<Manifest, 'id' | 'server' | 'snapshot'>>): ArchivePrune[] {
  const out: ArchivePrune[] = [];
  const newest = listing[listing.length - 1]?.timeline.timeline ?? null;
  for (const { timeline, files } of listing) {
    const fulls = keptFulls.filter((f) => f.snapshot && sameServer(f.server, timeline.server) === null);
    const starts = fulls.map((f) => binlogNumber(f.snapshot!.file)?.number).filter((n): n is number => n !== undefined);
    if (starts.length === 0) {
      if (timeline.timeline !== newest) out.push({ timeline: timeline.timeline, file: null, reason: 'no kept full backup of its server: a replay could never start in it' });
      continue;
    }
    const oldest = Math.min(...starts);
    for (const file of files) {
      const n = binlogNumber(file)?.number;
      if (n !== undefined && n < oldest) out.push({ timeline: timeline.timeline, file, reason: `before the oldest kept full's snapshot file (${binlogNameLike(file, oldest)})` });
    }
  }
  return out;
}

function binlogNameLike(file: string, n: number): string {
  const p = binlogNumber(file);
  return p ? `${p.base}.${String(n).padStart(p.width, '0')}` : String(n);
}
