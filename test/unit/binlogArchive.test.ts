/**
 * The pure part of continuous binlog archiving: where a segment may be cut (only between
 * transactions, whatever the chunking), resuming (on a boundary, or the file is not the
 * archived one), where the next run starts (or which gap stops it), how segments make up
 * files, and how a restore continues a backup chain with the archive.
 *
 * The fixtures are real binlog files from MariaDB 10.11 and MySQL 9.7 (DDL, a multi-statement
 * transaction, a statement-format INSERT larger than 1 KiB, a DDL statement larger than
 * 1 KiB); the expected cut points are the transaction ends mysqlbinlog prints for them.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  advanceCoverage,
  archiveContinuing,
  assembleTimeline,
  planArchiveStart,
  prunableArchive,
  SegmentCutter,
  type Segment,
  type Timeline,
} from '../../src/domain/binlogArchive';
import type { Manifest, ServerIdentity } from '../../src/domain/manifest';
import { planRestore } from '../../src/domain/restorePlan';
import { archiveHoles } from '../../src/domain/repoVerify';

const fixture = (name: string) => readFileSync(path.join(__dirname, '..', 'fixtures', 'binlog', name));

function cuts(bytes: Buffer, chunk: number, resumeAt = 0): { cuts: Array<[number, number, number]>; closed: boolean; misaligned: boolean } {
  const c = new SegmentCutter('binlog.000001', resumeAt);
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    c.push(bytes.subarray(i, i + chunk));
    const t = c.take();
    if (t) out.push([t.start, t.end, t.facts.transactions]);
  }
  return { cuts: out, closed: c.closed, misaligned: c.misaligned };
}

/** Only the ends that close a transaction (the header events before the first one cut too). */
const transactionEnds = (r: ReturnType<typeof cuts>) => r.cuts.filter((x) => x[2] > 0).map((x) => x[1]);

describe('SegmentCutter', () => {
  const cases: Array<[string, number[], boolean]> = [
    ['mariadb-closed.000001', [462, 657, 867, 1077, 1287], true],
    ['mariadb-open.000002', [549, 762, 1135, 1316, 2391], false],
    ['mysql-closed.000001', [348, 587, 862, 1137], true],
    ['mysql-open.000002', [473, 690, 1076, 1378, 2499], false],
  ];

  it.each(cases)('%s is cut only at transaction ends, whatever the chunk size', (name, ends, closed) => {
    const bytes = fixture(name);
    for (const chunk of [1, 7, 19, 256, 4096]) {
      const r = cuts(bytes, chunk);
      // Small chunks see every boundary; big ones may put several transactions in one cut, never part of one.
      if (chunk < 20) expect(transactionEnds(r)).toEqual(ends);
      else for (const end of transactionEnds(r)) expect([...ends, bytes.length]).toContain(end);
      expect(r.closed).toBe(closed);
      // Contiguous from 0 to the end of the last whole transaction.
      expect(r.cuts[0]![0]).toBe(0);
      for (let i = 1; i < r.cuts.length; i++) expect(r.cuts[i]![0]).toBe(r.cuts[i - 1]![1]);
      expect(r.cuts[r.cuts.length - 1]![1]).toBe(bytes.length);
    }
  });

  it('a file cut off inside a transaction is published only up to the transaction before', () => {
    const bytes = fixture('mysql-open.000002').subarray(0, 1000); // inside the transaction ending at 1076
    const r = cuts(bytes, 64);
    expect(r.cuts[r.cuts.length - 1]![1]).toBe(690);
  });

  it('resumes on a boundary without handing out what was published; elsewhere the file is not the archived one', () => {
    const bytes = fixture('mariadb-open.000002');
    const r = cuts(bytes, 13, 762);
    expect(r.misaligned).toBe(false);
    expect(r.cuts.map((x) => [x[0], x[1]])).toEqual([
      [762, 1135],
      [1135, 1316],
      [1316, 2391],
    ]);
    expect(cuts(bytes, 13, 700).misaligned).toBe(true);
  });

  it('a file the server never closed (it crashed) counts as closed once the walk is at its end between transactions', () => {
    const bytes = fixture('mysql-open.000002');
    const c = new SegmentCutter('binlog.000002', 0);
    c.push(bytes.subarray(0, 1000)); // inside a transaction
    expect(c.endedWithoutRotate()).toBe(false);
    c.push(bytes.subarray(1000));
    expect(c.endedWithoutRotate()).toBe(true);
    expect(c.take()).toMatchObject({ end: bytes.length, closed: true });
  });

  it('a compressed transaction (MySQL binlog_transaction_compression) ends at its payload event', () => {
    // magic, then GTID (33, 25-byte body) and TRANSACTION_PAYLOAD (40) events, no checksum.
    const event = (type: number, body: Buffer) => {
      const h = Buffer.alloc(19);
      h.writeUInt8(type, 4);
      h.writeUInt32LE(19 + body.length, 9);
      return Buffer.concat([h, body]);
    };
    const gtid = Buffer.alloc(25);
    gtid.writeUInt8(1, 17);
    const bytes = Buffer.concat([Buffer.from([0xfe, 0x62, 0x69, 0x6e]), event(33, gtid), event(40, Buffer.alloc(100)), event(33, gtid), event(40, Buffer.alloc(50))]);
    const c = new SegmentCutter('binlog.000001', 0);
    c.push(bytes);
    expect(c.take()).toMatchObject({ end: bytes.length });
  });

  it('counts the GTIDs of each segment', () => {
    const c = new SegmentCutter('binlog.000002', 0);
    c.push(fixture('mysql-open.000002'));
    const t = c.take()!;
    expect(t.facts.transactions).toBe(5);
    expect(t.facts.gtids).toHaveLength(1);
    expect(Number(t.facts.gtids[0]!.last.split(':')[1]) - Number(t.facts.gtids[0]!.first.split(':')[1])).toBe(4);
  });
});

const server: ServerIdentity = { product: 'mariadb', version: '10.11.6', serverId: 11, serverUuid: null, hostname: 'db1', binlogFormat: 'ROW', gtidMode: null };
const timeline: Timeline = { formatVersion: 1, timeline: 't20261202T100000Z', server, startFile: 'binlog.000003', startedAt: '2026-12-02T10:00:00Z', reason: 'first archive run', previous: null };

describe('planArchiveStart', () => {
  const binlogs = [
    { name: 'binlog.000003', size: 900 },
    { name: 'binlog.000004', size: 500 },
  ];
  it('starts a first timeline where the newest backup ends, if the server still has it', () => {
    expect(planArchiveStart({ tip: null, server, binlogs, preferred: 'binlog.000004' })).toMatchObject({ action: 'new', file: 'binlog.000004', gap: false });
    expect(planArchiveStart({ tip: null, server, binlogs, preferred: 'binlog.000001' })).toMatchObject({ action: 'new', file: 'binlog.000003', gap: false });
  });
  it('resumes in the file and at the offset the published segments end', () => {
    expect(planArchiveStart({ tip: { timeline, last: { file: 'binlog.000003', end: 700, closed: false } }, server, binlogs, preferred: null })).toEqual({ action: 'resume', timeline: timeline.timeline, file: 'binlog.000003', position: 700 });
    expect(planArchiveStart({ tip: { timeline, last: { file: 'binlog.000003', end: 900, closed: true } }, server, binlogs, preferred: null })).toEqual({ action: 'resume', timeline: timeline.timeline, file: 'binlog.000004', position: 0 });
  });
  it('reports purged, backwards and another server as gaps', () => {
    const purged = planArchiveStart({ tip: { timeline, last: { file: 'binlog.000002', end: 70, closed: false } }, server, binlogs, preferred: null });
    expect(purged).toMatchObject({ action: 'new', gap: true, previous: timeline.timeline, reason: expect.stringMatching(/purged before they were archived/) });
    const shorter = planArchiveStart({ tip: { timeline, last: { file: 'binlog.000004', end: 800, closed: false } }, server, binlogs, preferred: null });
    expect(shorter).toMatchObject({ action: 'new', gap: true, reason: expect.stringMatching(/went backwards/) });
    const reset = planArchiveStart({ tip: { timeline, last: { file: 'binlog.000009', end: 80, closed: false } }, server, binlogs, preferred: null });
    expect(reset).toMatchObject({ action: 'new', gap: true, reason: expect.stringMatching(/went backwards/) });
    const other = planArchiveStart({ tip: { timeline, last: { file: 'binlog.000003', end: 700, closed: false } }, server: { ...server, serverId: 12 }, binlogs, preferred: null });
    expect(other).toMatchObject({ action: 'new', gap: true, newHistory: true, reason: 'another server: server id 11 became 12' });
    expect(purged).toMatchObject({ newHistory: false });
    expect(reset).toMatchObject({ newHistory: true });
  });
});

function segment(file: string, start: number, end: number, extra: Partial<Segment> = {}): Segment {
  return {
    formatVersion: 1,
    timeline: timeline.timeline,
    file,
    start,
    end,
    closed: false,
    artifact: { name: `${start}-${end}.binlog.zst`, compression: 'zstd', size: 10, sha256: 'a'.repeat(64), rawSize: end - start, rawSha256: 'b'.repeat(64) },
    events: 1,
    transactions: 1,
    firstEventTime: null,
    lastEventTime: null,
    gtids: [],
    coveredUntil: null,
    publishedAt: '2026-12-02T10:00:00Z',
    ...extra,
  };
}

describe('assembleTimeline', () => {
  it('joins contiguous segments into files and stops at a hole or an open file', () => {
    const t = assembleTimeline(
      timeline,
      [
        segment('binlog.000003', 0, 400),
        segment('binlog.000003', 400, 900, { closed: true, coveredUntil: '2026-12-02T10:05:00Z' }),
        segment('binlog.000004', 0, 300, { coveredUntil: '2026-12-02T10:06:00Z' }),
        segment('binlog.000004', 350, 500), // after a hole: not used
      ],
      null,
    );
    expect(t.files.map((f) => [f.file, f.size, f.closed])).toEqual([
      ['binlog.000003', 900, true],
      ['binlog.000004', 300, false],
    ]);
    expect(t.coveredUntil).toBe('2026-12-02T10:06:00Z');
  });
  it('starts from the oldest file still stored (retention removed the ones before it)', () => {
    const t = assembleTimeline(timeline, [segment('binlog.000005', 0, 200, { closed: true }), segment('binlog.000006', 0, 50)], null);
    expect(t.files.map((f) => f.file)).toEqual(['binlog.000005', 'binlog.000006']);
  });
  it('takes the coverage of an idle stream from the status, only within what is published', () => {
    const segments = [segment('binlog.000003', 0, 400, { coveredUntil: '2026-12-02T10:05:00Z' })];
    const status = { formatVersion: 1 as const, timeline: timeline.timeline, file: 'binlog.000003', position: 400, coveredUntil: '2026-12-02T10:09:00Z', updatedAt: '2026-12-02T10:09:01Z' };
    expect(assembleTimeline(timeline, segments, status).coveredUntil).toBe('2026-12-02T10:09:00Z');
    expect(assembleTimeline(timeline, segments, { ...status, position: 500 }).coveredUntil).toBe('2026-12-02T10:05:00Z');
  });
  it('coverage advances only with samples the published end has passed', () => {
    const samples = [
      { file: 'binlog.000003', position: 300, at: 'A' },
      { file: 'binlog.000003', position: 800, at: 'B' },
      { file: 'binlog.000004', position: 100, at: 'C' },
    ];
    expect(advanceCoverage(samples, { file: 'binlog.000003', position: 800 })).toBe('B');
    expect(samples).toHaveLength(1);
    expect(advanceCoverage(samples, { file: 'binlog.000003', position: 900 })).toBeNull();
  });
});

describe('restore planning with the archive', () => {
  const full = {
    formatVersion: 1,
    id: '20261202T095900.000Z-full',
    type: 'full',
    cluster: 'c',
    status: 'verified',
    retentionClass: 'routine',
    parentId: null,
    baseFullId: null,
    startedAt: '2026-12-02T09:59:00.000Z',
    finishedAt: '2026-12-02T09:59:30.000Z',
    verifiedAt: '2026-12-02T09:59:40.000Z',
    durationMs: 30000,
    server,
    tool: { name: 'mariadb-dump', version: '10.11' },
    databases: ['shop'],
    snapshot: { file: 'binlog.000003', position: 120, gtidSet: null },
    binlogs: null,
    tables: [{ database: 'shop', table: 'orders', rows: 10, dataBytes: 1 }],
    objects: { routines: 0, triggers: 0, events: 0, views: [] },
    artifacts: [{ name: 'dump.sql.zst', compression: 'zstd', size: 1, sha256: 'a'.repeat(64), rawSize: 1, rawSha256: 'b'.repeat(64) }],
    workflow: { workflowId: 'w', runId: 'r' },
    requestedBy: null,
    reason: null,
    encryption: null,
  } as unknown as Manifest;
  const archived = assembleTimeline(
    timeline,
    [segment('binlog.000003', 0, 900, { closed: true }), segment('binlog.000004', 0, 300, { coveredUntil: '2026-12-02T10:06:00.000Z' })],
    null,
  );
  const plan = (at: string, archive = [archived]) =>
    planRestore({ cluster: 'c', database: 'shop', target: { kind: 'time', at }, backups: [{ manifest: full, relativePath: 'c/full/2026-12-02/x' }], chainState: null, now: new Date('2026-12-02T11:00:00Z'), archive });

  it('replays the archived files after the full, from the snapshot position', () => {
    const outcome = plan('2026-12-02T10:05:00.000Z');
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.plan.binlogs.map((b) => b.file)).toEqual(['binlog.000003', 'binlog.000004']);
    expect(outcome.plan.start).toMatchObject({ file: 'binlog.000003', position: 120 });
    expect(outcome.plan.archive).toMatchObject({ timeline: timeline.timeline, files: 2 });
    expect(outcome.plan.window.to).toBe('2026-12-02T10:06:00.000Z');
  });
  it('refuses a time the archive has not reached, and an archive of another server', () => {
    expect(plan('2026-12-02T10:07:00.000Z').ok).toBe(false);
    const other = { ...archived, timeline: { ...timeline, server: { ...server, serverId: 99 } } };
    expect(plan('2026-12-02T10:05:00.000Z', [other]).ok).toBe(false);
    expect(archiveContinuing([archived], full, 'binlog.000005')).toBeNull();
  });
  it('never continues a full in a timeline of a newer history (RESET MASTER), even where file names repeat', () => {
    const reset = { ...archived, timeline: { ...timeline, timeline: 't20261202T103000Z', startedAt: '2026-12-02T10:30:00.000Z', newHistory: true } };
    expect(archiveContinuing([reset], full, 'binlog.000003')).toBeNull();
    expect(archiveContinuing([reset], { ...full, finishedAt: '2026-12-02T10:31:00.000Z' }, 'binlog.000003')).not.toBeNull();
  });
});

describe('prunableArchive', () => {
  const older: Timeline = { ...timeline, timeline: 't20261201T100000Z', server: { ...server, serverId: 7 } };
  const listing = [
    { timeline: older, files: ['binlog.000001', 'binlog.000002'] },
    { timeline, files: ['binlog.000003', 'binlog.000004', 'binlog.000005'] },
  ];
  const full = (file: string, s: ServerIdentity = server) => ({ id: 'x', server: s, snapshot: { file, position: 4, gtidSet: null } });

  it('removes files before the oldest kept full of the same server, and timelines no kept full belongs to', () => {
    expect(prunableArchive(listing, [full('binlog.000004'), full('binlog.000005')])).toEqual([
      { timeline: older.timeline, file: null, reason: expect.stringMatching(/no kept full backup of its server/) },
      { timeline: timeline.timeline, file: 'binlog.000003', reason: expect.stringMatching(/binlog\.000004/) },
    ]);
  });
  it('never removes the newest timeline whole, and keeps everything a kept full can start in', () => {
    expect(prunableArchive(listing, [])).toEqual([{ timeline: older.timeline, file: null, reason: expect.any(String) }]);
    expect(prunableArchive(listing, [full('binlog.000001', older.server), full('binlog.000003')])).toEqual([]);
  });
});

describe('archiveHoles (repo verify)', () => {
  it('names a hole inside a file and a file never archived to its end before later ones', () => {
    expect(
      archiveHoles([
        { file: 'binlog.000003', key: 'c/binlog-archive/t/binlog.000003', segments: [{ start: 0, end: 400, closed: false }, { start: 500, end: 900, closed: true }] },
        { file: 'binlog.000004', key: 'c/binlog-archive/t/binlog.000004', segments: [{ start: 0, end: 300, closed: false }] },
        { file: 'binlog.000005', key: 'c/binlog-archive/t/binlog.000005', segments: [{ start: 0, end: 100, closed: false }] },
      ]),
    ).toEqual([
      { class: 'chain', key: 'c/binlog-archive/t/binlog.000003', detail: 'binlog.000003: bytes [400, 500) are not archived; a restore stops before them' },
      { class: 'chain', key: 'c/binlog-archive/t/binlog.000004', detail: 'binlog.000004 was never archived to its end, yet later files were: a restore stops in it' },
    ]);
  });
});
