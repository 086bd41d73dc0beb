/**
 * The continuous binlog archive in the repository: timelines, published segments, the
 * summary of each closed file, and the status an idle stream keeps fresh. Everything read
 * back is parsed before use; an object that does not parse is skipped, never trusted.
 */
import {
  ArchiveStatusSchema,
  assembleTimeline,
  parseSegmentStem,
  SegmentSchema,
  TimelineSchema,
  type ArchivedTimeline,
  type ArchiveStatus,
  type ArchiveTip,
  type Segment,
  type Timeline,
} from '../domain/binlogArchive';
import { z } from 'zod';
import { binlogNumber } from '../domain/chain';
import { layout } from './layout';
import type { Storage } from './storage';

function parsed<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, text: string | null): T | null {
  if (text === null) return null;
  try {
    const r = schema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Longer than the archive activity's heartbeat timeout: by then an abandoned attempt has stopped writing. */
const UNPUBLISHED_GRACE_MS = 2 * 60_000;

const ClosedFileSchema = z.strictObject({ formatVersion: z.literal(1), timeline: z.string(), file: z.string(), segments: z.array(SegmentSchema) });

const byBinlogNumber = (a: string, b: string) => (binlogNumber(a)?.number ?? -1) - (binlogNumber(b)?.number ?? -1);

export class BinlogArchive {
  constructor(private readonly storage: Storage, private readonly cluster: string) {}

  async timelines(): Promise<Timeline[]> {
    const names = (await this.storage.children(layout.archiveDir(this.cluster))).filter(layout.isTimeline).sort();
    const out: Timeline[] = [];
    for (const name of names) {
      const t = parsed(TimelineSchema, await this.storage.readText(layout.archiveTimeline(this.cluster, name)));
      if (t && t.timeline === name) out.push(t);
    }
    return out;
  }

  async writeTimeline(t: Timeline): Promise<void> {
    await this.storage.writeText(layout.archiveTimeline(this.cluster, t.timeline), JSON.stringify(TimelineSchema.parse(t), null, 2) + '\n');
  }

  /** The binlog files of a timeline that have a folder, oldest first. */
  async files(timeline: string): Promise<string[]> {
    return (await this.storage.children(layout.archiveTimelineDir(this.cluster, timeline))).filter(layout.isBinlogFile).sort(byBinlogNumber);
  }

  /** The published segments of one file, by start. */
  async segments(timeline: string, file: string): Promise<Segment[]> {
    const dir = layout.archiveFileDir(this.cluster, timeline, file);
    const out: Segment[] = [];
    for (const name of await this.storage.children(dir)) {
      const stem = parseSegmentStem(name);
      if (!stem || !name.endsWith('.json')) continue;
      const s = parsed(SegmentSchema, await this.storage.readText(layout.archiveSegment(this.cluster, timeline, file, stem.start, stem.end)));
      if (s && s.timeline === timeline && s.file === file && s.start === stem.start && s.end === stem.end) out.push(s);
    }
    return out.sort((a, b) => a.start - b.start);
  }

  /** Where the newest timeline stands: its newest published segment. */
  async tip(): Promise<ArchiveTip | null> {
    const timelines = await this.timelines();
    const timeline = timelines[timelines.length - 1];
    if (!timeline) return null;
    const files = await this.files(timeline.timeline);
    for (const file of files.reverse()) {
      const segments = await this.segments(timeline.timeline, file);
      const last = segments[segments.length - 1];
      if (last) return { timeline, last: { file: last.file, end: last.end, closed: last.closed } };
    }
    return { timeline, last: null };
  }

  /** Removes objects of a file past `from` that no segment record names (a run that died between the bytes and the record). */
  async removeUnpublished(timeline: string, file: string, from: number, now: Date = new Date()): Promise<number> {
    const dir = layout.archiveFileDir(this.cluster, timeline, file);
    const names = await this.storage.children(dir);
    const records = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.replace(/\.json$/, '')));
    let removed = 0;
    for (const name of names) {
      const stem = parseSegmentStem(name);
      if (!stem || name.endsWith('.json') || stem.start < from) continue;
      if (records.has(name.slice(0, 25))) continue;
      // An attempt Temporal gave up on may still be writing it for a moment: leave what is young (the next run removes it).
      const info = await this.storage.stat(layout.listed(dir, name));
      if (info && now.getTime() - info.modified.getTime() < UNPUBLISHED_GRACE_MS) continue;
      await this.storage.remove(layout.listed(dir, name));
      removed += 1;
    }
    return removed;
  }

  async writeSegment(s: Segment): Promise<void> {
    await this.storage.writeText(layout.archiveSegment(this.cluster, s.timeline, s.file, s.start, s.end), JSON.stringify(SegmentSchema.parse(s), null, 2) + '\n');
  }

  /** One record per closed file (its segments' records), so that reading a timeline costs one read per closed file. */
  async writeClosedFile(timeline: string, file: string, segments: readonly Segment[]): Promise<void> {
    const summary = ClosedFileSchema.parse({ formatVersion: 1, timeline, file, segments });
    await this.storage.writeText(layout.archiveFileSummary(this.cluster, timeline, file), JSON.stringify(summary) + '\n');
  }

  async status(): Promise<ArchiveStatus | null> {
    return parsed(ArchiveStatusSchema, await this.storage.readText(layout.archiveStatus(this.cluster)));
  }

  async writeStatus(s: ArchiveStatus): Promise<void> {
    await this.storage.writeText(layout.archiveStatus(this.cluster), JSON.stringify(ArchiveStatusSchema.parse(s)) + '\n');
  }

  /** Every timeline as a restore can use it. */
  async assemble(): Promise<ArchivedTimeline[]> {
    const status = await this.status();
    const out: ArchivedTimeline[] = [];
    for (const timeline of await this.timelines()) {
      const segments: Segment[] = [];
      for (const file of await this.files(timeline.timeline)) {
        const summary = await this.closedFile(timeline, file);
        if (summary) segments.push(...summary);
        else segments.push(...(await this.segments(timeline.timeline, file)));
      }
      out.push(assembleTimeline(timeline, segments, status));
    }
    return out;
  }

  private async closedFile(timeline: Timeline, file: string): Promise<Segment[] | null> {
    const summary = parsed(ClosedFileSchema, await this.storage.readText(layout.archiveFileSummary(this.cluster, timeline.timeline, file)));
    if (!summary || summary.timeline !== timeline.timeline || summary.file !== file) return null;
    return summary.segments.filter((s) => s.timeline === timeline.timeline && s.file === file);
  }

  async removeFile(timeline: string, file: string): Promise<void> {
    await this.storage.removeTree(layout.archiveFileDir(this.cluster, timeline, file));
  }

  async removeTimeline(timeline: string): Promise<void> {
    await this.storage.removeTree(layout.archiveTimelineDir(this.cluster, timeline));
  }
}
