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
  | { action: 'new'; file: string; reason: string; gap: boolean; previous: string | null };

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
  const fresh = (reason: string, gap: boolean): ArchiveStart => ({
    action: 'new',
    file: input.preferred && listed.has(input.preferred) ? input.preferred : oldest,
    reason,
    gap,
    previous: tip?.timeline.timeline ?? null,
  });
  if (!tip) return fresh('first archive run', false);
  const changed = sameServer(tip.timeline.server, input.server);
  if (changed) return fresh(`another server: ${changed}`, true);
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
      ? fresh(`the binary log went backwards: the archive is at ${last.file}:${last.end}, the server's newest is ${binlogs[binlogs.length - 1]?.name} (RESET MASTER or a restored server?)`, true)
      : fresh(`binary logs were purged before they were archived: ${want} is needed, the server's oldest is ${oldest}`, true);
  }
  if (size < position) return fresh(`the binary log went backwards: ${want} is ${size} bytes on the server, the archive has ${position}`, true);
  return { action: 'resume', timeline: tip.timeline.timeline, file: want, position };
}

// ---------------------------------------------------------------------------------------
// Where a segment may be cut

const HEADER = 19;
const STOP_EVENT = 3;
const QUERY_EVENT = 2;
const ROTATE_EVENT = 4;
const FORMAT_DESCRIPTION_EVENT = 15;
const XID_EVENT = 16;
const MYSQL_GTID_EVENT = 33;
const MYSQL_ANONYMOUS_GTID_EVENT = 34;
const XA_PREPARE_EVENT = 38;
const MARIADB_GTID_EVENT = 162;
/** Query events this small are read whole (BEGIN, COMMIT, ROLLBACK are tiny); bigger ones are statements. */
const SMALL_QUERY = 1024;

function u32(b: Uint8Array, o: number): number {
  return ((b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16)) + (b[o + 3] as number) * 0x1000000;
}

function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) + (BigInt(u32(b, o + 4)) << 32n);
}

function uuidAt(b: Uint8Array, o: number): string {
  let h = '';
  for (let i = o; i < o + 16; i++) h += (b[i] as number).toString(16).padStart(2, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface SegmentFacts {
  events: number;
  transactions: number;
  firstEventTime: string | null;
  lastEventTime: string | null;
  gtids: GtidInterval[];
}

class FactsBuilder {
  events = 0;
  transactions = 0;
  first: number | null = null;
  last: number | null = null;
  gtids = new Map<string, GtidInterval>();

  gtid(source: string, id: string, time: number): void {
    const g = this.gtids.get(source);
    if (g) g.last = id;
    else this.gtids.set(source, { source, first: id, last: id });
    this.transactions += 1;
    if (this.first === null) this.first = time;
    this.last = time;
  }

  absorb(other: FactsBuilder): void {
    this.events += other.events;
    this.transactions += other.transactions;
    if (this.first === null) this.first = other.first;
    if (other.last !== null) this.last = other.last;
    for (const g of other.gtids.values()) {
      const mine = this.gtids.get(g.source);
      if (mine) mine.last = g.last;
      else this.gtids.set(g.source, { ...g });
    }
  }

  facts(): SegmentFacts {
    const iso = (t: number | null) => (t === null ? null : new Date(t * 1000).toISOString());
    return { events: this.events, transactions: this.transactions, firstEventTime: iso(this.first), lastEventTime: iso(this.last), gtids: [...this.gtids.values()].map((g) => ({ ...g })) };
  }
}

type TxState = 'none' | 'afterGtid' | 'standalone' | 'open';

/**
 * Walks a binlog file as it grows and says how far it may be cut: after the last event
 * that ends a transaction (or any event outside one). A segment that ended inside a
 * transaction would replay half of it. Bytes before `resumeAt` were archived by an
 * earlier run: they are walked (the transaction state needs them) but not handed out, and
 * `resumeAt` must fall between transactions, or the archive does not line up with this
 * file.
 */
export class SegmentCutter {
  private offset = 0;
  private magic = 0;
  private header = new Uint8Array(HEADER);
  private headerLength = 0;
  private body: Uint8Array | null = null;
  private bodyLength = 0;
  private skip = 0;
  private type = 0;
  private time = 0;
  private serverId = 0;
  private eventStart = 0;
  private checksum = 0;
  private tx: TxState = 'none';
  private queryRead = false;
  private committed = new FactsBuilder();
  private open = new FactsBuilder();
  /** Offset after the last event that may end a segment. */
  private safe: number;
  private taken: number;
  private sawEnd = false;
  private alignedAtResume: boolean;

  constructor(readonly file: string, readonly resumeAt = 0) {
    this.safe = resumeAt === 0 ? 0 : -1;
    this.taken = resumeAt;
    this.alignedAtResume = resumeAt === 0;
  }

  /** Bytes walked so far (the local copy's length as far as it was pushed). */
  get walked(): number {
    return this.offset;
  }

  /** Where the next segment may end; -1 until `resumeAt` was reached on a boundary. */
  get safeEnd(): number {
    return this.safe;
  }

  get publishedEnd(): number {
    return this.taken;
  }

  /** The file's last event (Rotate or Stop) is in and nothing is left open. */
  get closed(): boolean {
    return this.sawEnd && this.tx === 'none' && this.safe === this.offset;
  }

  /** The stream passed `resumeAt` without an event boundary there: the archive and this file disagree. */
  get misaligned(): boolean {
    return !this.alignedAtResume && this.offset > this.resumeAt;
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.magic < 4) {
        this.magic += 1;
        this.offset += 1;
        i += 1;
        if (this.magic === 4) this.atBoundary();
        continue;
      }
      if (this.body) {
        const n = Math.min(this.body.length - this.bodyLength, chunk.length - i);
        this.body.set(chunk.subarray(i, i + n), this.bodyLength);
        this.bodyLength += n;
        this.offset += n;
        i += n;
        if (this.bodyLength === this.body.length) {
          const keep = this.body;
          this.body = null;
          this.onBody(keep);
          if (this.skip === 0) this.endEvent();
        }
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        this.offset += n;
        i += n;
        if (this.skip === 0) this.endEvent();
        continue;
      }
      const n = Math.min(HEADER - this.headerLength, chunk.length - i);
      this.header.set(chunk.subarray(i, i + n), this.headerLength);
      this.headerLength += n;
      this.offset += n;
      i += n;
      if (this.headerLength === HEADER) this.onHeader();
    }
  }

  private onHeader(): void {
    const h = this.header;
    this.eventStart = this.offset - HEADER;
    this.time = u32(h, 0);
    this.type = h[4] as number;
    this.serverId = u32(h, 5);
    const size = u32(h, 9);
    this.headerLength = 0;
    if (size < HEADER) throw new Error(`${this.file}: event at ${this.eventStart} claims ${size} bytes: not a binary log`);
    const rest = size - HEADER;
    let want = 0;
    if (this.type === FORMAT_DESCRIPTION_EVENT) want = rest;
    else if (this.type === QUERY_EVENT && size <= SMALL_QUERY) want = rest;
    else if (this.type === MARIADB_GTID_EVENT) want = Math.min(rest, 13);
    else if (this.type === MYSQL_GTID_EVENT) want = Math.min(rest, 25);
    this.skip = rest - want;
    if (want > 0) {
      this.body = new Uint8Array(want);
      this.bodyLength = 0;
    } else if (rest === 0) {
      this.endEvent();
    }
  }

  private onBody(b: Uint8Array): void {
    switch (this.type) {
      case FORMAT_DESCRIPTION_EVENT:
        // The checksum algorithm is the byte before the event's own 4-byte checksum (0 = none, 1 = CRC32).
        this.checksum = b.length >= 5 && b[b.length - 5] === 1 ? 4 : 0;
        break;
      case QUERY_EVENT: {
        this.queryRead = true;
        const dbLength = b[8] as number;
        const statusLength = (b[11] as number) | ((b[12] as number) << 8);
        const from = 13 + statusLength + dbLength + 1;
        const to = b.length - this.checksum;
        this.onQuery(from <= to ? Buffer.from(b.subarray(from, to)).toString('latin1').trim().toUpperCase() : '');
        break;
      }
      case MARIADB_GTID_EVENT: {
        if (b.length < 12) break;
        const domain = u32(b, 8);
        this.open.gtid(`${domain}-${this.serverId}`, `${domain}-${this.serverId}-${u64(b, 0)}`, this.time);
        const standalone = b.length >= 13 && ((b[12] as number) & 1) === 1;
        this.tx = standalone ? 'standalone' : 'open';
        break;
      }
      case MYSQL_GTID_EVENT: {
        if (b.length < 25) break;
        const source = uuidAt(b, 1);
        this.open.gtid(source, `${source}:${u64(b, 17)}`, this.time);
        this.tx = 'afterGtid';
        break;
      }
    }
  }

  private onQuery(text: string): void {
    if (this.tx === 'afterGtid' && text === 'BEGIN') {
      this.tx = 'open';
      return;
    }
    if (this.tx === 'open') {
      if (text === 'COMMIT' || text === 'ROLLBACK') this.tx = 'none';
      return;
    }
    // A statement on its own (DDL after a GTID, or anything outside a transaction).
    if (text !== 'BEGIN') this.tx = 'none';
    else this.tx = 'open';
  }

  private endEvent(): void {
    this.open.events += 1;
    switch (this.type) {
      case MYSQL_ANONYMOUS_GTID_EVENT:
        this.open.transactions += 1;
        if (this.open.first === null) this.open.first = this.time;
        this.open.last = this.time;
        this.tx = 'afterGtid';
        break;
      case XID_EVENT:
      case XA_PREPARE_EVENT:
        this.tx = 'none';
        break;
      case ROTATE_EVENT:
      case STOP_EVENT:
        if (this.tx === 'none') this.sawEnd = true;
        break;
    }
    // A statement too big to be BEGIN, COMMIT or ROLLBACK, right after a GTID: DDL, on its own.
    if (this.type === QUERY_EVENT && !this.queryRead && (this.tx === 'afterGtid' || this.tx === 'standalone')) this.tx = 'none';
    this.queryRead = false;
    if (this.tx === 'none') this.atBoundary();
  }

  private atBoundary(): void {
    if (!this.alignedAtResume) {
      if (this.offset === this.resumeAt) {
        this.alignedAtResume = true;
        this.safe = this.offset;
        this.open = new FactsBuilder();
      }
      return;
    }
    this.committed.absorb(this.open);
    this.open = new FactsBuilder();
    this.safe = this.offset;
  }

  /** Hands out [publishedEnd, safeEnd) with its facts; nothing when there is nothing new. */
  take(): { start: number; end: number; closed: boolean; facts: SegmentFacts } | null {
    if (this.safe <= this.taken) return null;
    const out = { start: this.taken, end: this.safe, closed: this.closed, facts: this.committed.facts() };
    this.taken = this.safe;
    this.committed = new FactsBuilder();
    return out;
  }
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
  let name = timeline.startFile;
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
 * The archived files that continue a chain ending at `from` (the file replay continues in),
 * on the same server: null when no timeline holds `from` from byte 0 onwards.
 */
export function archiveContinuing(timelines: readonly ArchivedTimeline[], server: ServerIdentity, fromFile: string): { timeline: ArchivedTimeline; files: ArchivedFile[] } | null {
  for (const t of [...timelines].reverse()) {
    if (sameServer(t.timeline.server, server)) continue;
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
