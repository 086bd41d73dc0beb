import { ManifestSchema, totalStoredBytes, type BackupType, type Manifest, type ServerIdentity } from '../../src/domain/manifest';
import {
  DEFAULT_RETENTION,
  RetentionConfigSchema,
  checkPlanSafe,
  durationMs,
  effectivePolicies,
  planRetention,
  type RetentionConfig,
  type RetentionConfigInput,
  type RetentionPlan,
} from '../../src/domain/retention';
import { planRestore } from '../../src/domain/restorePlan';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const server: ServerIdentity = { product: 'mariadb', version: '10.11.19', serverId: 1, serverUuid: null, hostname: 'db1', binlogFormat: 'ROW', gtidMode: null };

interface Make {
  type: BackupType;
  at: number;
  minutes?: number;
  bytes?: number;
  parentId?: string | null;
  baseFullId?: string | null;
  cluster?: string;
  id?: string;
}

let binlogCounter = 1;
/** Manifests are checked against ManifestSchema, except in bulk (the property test checks a sample). */
let validate = true;
function mk(o: Make): Manifest {
  const started = new Date(o.at);
  const finished = new Date(o.at + (o.minutes ?? 10) * 60_000);
  const id = o.id ?? `${started.toISOString().replace(/[-:]/g, '')}-${o.type}`;
  const file = `binlog.${String(binlogCounter++).padStart(6, '0')}`;
  const chained = o.type === 'incremental' || o.type === 'differential';
  const manifest: Manifest = {
    formatVersion: 1,
    encryption: null,
    id,
    type: o.type,
    cluster: o.cluster ?? 'shop',
    status: 'verified',
    retentionClass: o.type === 'emergency' ? 'emergency' : o.type === 'schema' ? 'schema' : 'routine',
    parentId: o.parentId ?? null,
    baseFullId: o.baseFullId ?? null,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    verifiedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    server,
    tool: { name: chained ? 'mysqlbinlog' : 'mariadb-dump', version: '10.11' },
    databases: ['app'],
    snapshot: o.type === 'full' || o.type === 'emergency' ? { file, position: 400, gtidSet: null } : null,
    binlogs: chained
      ? { startFile: file, startPosition: 4, endFile: file, endPosition: 900, files: [file], firstEventTime: null, lastEventTime: null, gtids: [], transactions: 1 }
      : null,
    tables: [{ database: 'app', table: 't', rows: 1 }],
    objects: { views: [], routines: 0, triggers: 0, events: 0 },
    artifacts: [{ name: chained ? `${file}.zst` : 'dump.sql.zst', compression: 'zstd', size: o.bytes ?? 1000, sha256: 'a'.repeat(64), rawSize: (o.bytes ?? 1000) * 4, rawSha256: 'b'.repeat(64) }],
    workflow: { workflowId: `backup-${o.type}/shop/${id}`, runId: 'r' },
    requestedBy: null,
    reason: o.type === 'schema' || o.type === 'emergency' ? 'test' : null,
  };
  return validate ? ManifestSchema.parse(manifest) : manifest;
}

/** Builds a cluster's catalog the way the backup workflows do (chain.ts semantics). */
class Catalog {
  readonly backups: Manifest[] = [];
  private base: Manifest | null = null;
  private members: Manifest[] = [];

  full(at: number, extra: Partial<Make> = {}): Manifest {
    const m = mk({ type: 'full', at, ...extra });
    this.backups.push(m);
    this.base = m;
    this.members = [];
    return m;
  }

  incremental(at: number, extra: Partial<Make> = {}): Manifest {
    const base = this.requireBase();
    const parent = this.members[this.members.length - 1] ?? base;
    const m = mk({ type: 'incremental', at, parentId: parent.id, baseFullId: base.id, bytes: 100, ...extra });
    this.backups.push(m);
    this.members.push(m);
    return m;
  }

  differential(at: number, extra: Partial<Make> = {}): Manifest {
    const base = this.requireBase();
    const m = mk({ type: 'differential', at, parentId: base.id, baseFullId: base.id, bytes: 300, ...extra });
    this.backups.push(m);
    this.members.push(m);
    return m;
  }

  standalone(type: 'schema' | 'emergency', at: number, extra: Partial<Make> = {}): Manifest {
    const m = mk({ type, at, ...extra });
    this.backups.push(m);
    return m;
  }

  hasBase(): boolean {
    return this.base !== null;
  }

  private requireBase(): Manifest {
    if (!this.base) throw new Error('no full yet');
    return this.base;
  }
}

const config = (input: RetentionConfigInput = {}): RetentionConfig => RetentionConfigSchema.parse(input);
const NOW = Date.parse('2026-11-22T12:00:00.000Z');
const ids = (list: ReadonlyArray<{ id: string }>): string[] => list.map((x) => x.id);
const keptReasons = (plan: RetentionPlan, id: string): string[] => plan.keep.find((k) => k.id === id)?.reasons ?? [];

describe('retention config', () => {
  test('defaults: the seed policies, a 7-day window, warn at 80 %, clean up at 90 %, approval above 10', () => {
    const c = config();
    expect(c).toEqual({ policies: {}, pointInTimeWindow: '7d', warnAt: 0.8, cleanupAt: 0.9, approvalAbove: 10 });
    expect(effectivePolicies(c)).toEqual(DEFAULT_RETENTION);
    expect(DEFAULT_RETENTION).toEqual({
      full: { days: 30, minCount: 7 },
      incremental: { days: 7, minCount: 28 },
      differential: { days: 7, minCount: 14 },
      schema: { days: 90, minCount: 10 },
      emergency: { days: 7, minCount: 3 },
    });
    expect(effectivePolicies(config({ policies: { full: { days: 14 }, emergency: { minCount: 1 } } }))).toMatchObject({
      full: { days: 14, minCount: 7 },
      emergency: { days: 7, minCount: 1 },
    });
    expect(durationMs('7d')).toBe(7 * DAY);
    expect(durationMs('15m')).toBe(15 * 60_000);
    expect(durationMs('250ms')).toBe(250);
  });

  test('refuses what it cannot mean', () => {
    const issues = (input: unknown): string[] => {
      const r = RetentionConfigSchema.safeParse(input);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ pointInTimeWindow: 'a week' })).toEqual(['pointInTimeWindow: a duration such as 90s, 15m, 4h or 7d']);
    expect(issues({ warnAt: 0.95 })).toEqual(['warnAt: warnAt must not be above cleanupAt']);
    expect(issues({ policies: { hourly: { days: 1 } } })[0]).toMatch(/^policies: Unrecognized key/);
    expect(issues({ policies: { full: { days: -1 } } })[0]).toMatch(/^policies.full.days: /);
    expect(issues({ maxBytes: 0 })[0]).toMatch(/^maxBytes: /);
    expect(issues({ keepForever: true })[0]).toMatch(/Unrecognized key/);
  });
});

describe('planRetention', () => {
  test('deletes what is older than its days once minCount newer ones exist; says why', () => {
    const cat = new Catalog();
    for (let d = 39; d >= 0; d--) cat.full(NOW - d * DAY - 10 * HOUR);
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: config() });
    expect(plan.delete.map((d) => d.reason)).toEqual([
      'older than 30 days (39 days old) and 39 newer full backups exist',
      'older than 30 days (38 days old) and 38 newer full backups exist',
      'older than 30 days (37 days old) and 37 newer full backups exist',
      'older than 30 days (36 days old) and 36 newer full backups exist',
      'older than 30 days (35 days old) and 35 newer full backups exist',
      'older than 30 days (34 days old) and 34 newer full backups exist',
      'older than 30 days (33 days old) and 33 newer full backups exist',
      'older than 30 days (32 days old) and 32 newer full backups exist',
      'older than 30 days (31 days old) and 31 newer full backups exist',
      'older than 30 days (30 days old) and 30 newer full backups exist',
    ]);
    expect(plan.delete.every((d) => d.type === 'full' && d.bytes === 1000)).toBe(true);
    expect(plan.keep).toHaveLength(30);
    expect(keptReasons(plan, cat.backups[39]!.id)).toEqual(['kept: newest 7 full', 'kept: within 30 days (0 days old)', 'kept: point-in-time window 7d needs this chain']);
    expect(plan.storage).toEqual({ usedBytes: 40_000, maxBytes: null, usedFraction: null, level: 'unlimited', bytesAfter: 30_000, fractionAfter: null });
    expect(plan.needsApproval).toBe(false);
    expect(plan.warnings).toEqual([]);
    expect(checkPlanSafe(cat.backups, plan, { now: new Date(NOW), config: config() })).toEqual([]);
  });

  test('minCount beats age: the newest minCount stay however old', () => {
    const cat = new Catalog();
    for (let i = 0; i < 9; i++) cat.full(NOW - (200 - i) * DAY);
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: config({ pointInTimeWindow: '0s' }) });
    expect(plan.delete.map((d) => d.reason)).toEqual([
      'older than 30 days (200 days old) and 8 newer full backups exist',
      'older than 30 days (199 days old) and 7 newer full backups exist',
    ]);
    expect(ids(plan.keep)).toEqual(ids(cat.backups.slice(2)));
    expect(keptReasons(plan, cat.backups[2]!.id)).toEqual(['kept: newest 7 full']);
    expect(keptReasons(plan, cat.backups[8]!.id)).toEqual(['kept: newest 7 full', 'kept: point-in-time window 0s needs this chain']);
  });

  test('a kept incremental pins its parent chain and its full', () => {
    const cat = new Catalog();
    const old = cat.full(NOW - 40 * DAY);
    const i1 = cat.incremental(NOW - 40 * DAY + 4 * HOUR);
    const d1 = cat.differential(NOW - 40 * DAY + 8 * HOUR);
    const i2 = cat.incremental(NOW - 40 * DAY + 12 * HOUR);
    for (let d = 20; d >= 0; d--) cat.full(NOW - d * DAY - HOUR);
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: config() });
    expect(plan.delete).toEqual([]);
    expect(keptReasons(plan, old.id)).toEqual(['kept: needed by 3 kept backups (newest: incremental ' + i2.id + ')']);
    expect(keptReasons(plan, d1.id)).toEqual(['kept: newest 14 differential', `kept: needed by incremental ${i2.id}`]);
    expect(keptReasons(plan, i1.id)).toEqual(['kept: newest 28 incremental']);

    // Once the incrementals may go, the whole old chain goes with them.
    const strict = config({ policies: { incremental: { minCount: 0 }, differential: { minCount: 0 } } });
    const plan2 = planRetention({ backups: cat.backups, now: new Date(NOW), config: strict });
    expect(ids(plan2.delete)).toEqual([old.id, i1.id, d1.id, i2.id]);
    expect(plan2.delete[3]?.reason).toBe('older than 7 days (39 days old) and 0 newer incremental backups exist');
    expect(checkPlanSafe(cat.backups, plan2, { now: new Date(NOW), config: strict })).toEqual([]);

    // Only the newest incremental kept: it needs its parent d1 and the full, not i1.
    const keepI2 = config({ policies: { incremental: { minCount: 1 }, differential: { minCount: 0 } } });
    const plan3 = planRetention({ backups: cat.backups, now: new Date(NOW), config: keepI2 });
    expect(ids(plan3.delete)).toEqual([i1.id]);
    expect(keptReasons(plan3, d1.id)).toEqual([`kept: needed by incremental ${i2.id}`]);
    expect(keptReasons(plan3, old.id)).toEqual([`kept: needed by 2 kept backups (newest: incremental ${i2.id})`]);
  });

  test('the point-in-time window keeps the newest full finished before its start, and every chain after it', () => {
    const cat = new Catalog();
    // Daily fulls at 02:00 taking 30 minutes, incrementals every 4 hours, for 10 days.
    for (let d = 10; d >= 0; d--) {
      const day = NOW - 12 * HOUR - d * DAY; // 00:00 of that day
      cat.full(day + 2 * HOUR, { minutes: 30 });
      for (const h of [6, 10, 14, 18, 22]) if (day + h * HOUR < NOW) cat.incremental(day + h * HOUR);
    }
    const lean = { full: { days: 0, minCount: 0 }, incremental: { days: 0, minCount: 0 } };
    // The window starts at 02:10, while that day's full was still running: the day before's full anchors it.
    const window = '4910m'; // 3 days 9 h 50 min: from 12:00 back to 02:10 three days ago
    expect(NOW - durationMs(window)).toBe(Date.parse('2026-11-19T02:10:00.000Z'));
    const c = config({ policies: lean, pointInTimeWindow: window });
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: c });
    const anchor = cat.backups.find((b) => b.type === 'full' && b.startedAt === '2026-11-18T02:00:00.000Z')!;
    const firstKept = plan.keep[0]!;
    expect(firstKept.id).toBe(anchor.id);
    expect(firstKept.reasons).toEqual(['kept: point-in-time window 4910m needs this chain', expect.stringMatching(/^kept: needed by 5 kept backups/)]);
    expect(ids(plan.keep)).toEqual(ids(cat.backups.filter((b) => b.startedAt >= anchor.startedAt)));
    expect(ids(plan.delete)).toEqual(ids(cat.backups.filter((b) => b.startedAt < anchor.startedAt)));
    // Every incremental of the anchor stays, also the ones before the window start.
    expect(plan.keep.filter((k) => cat.backups.find((b) => b.id === k.id)?.baseFullId === anchor.id)).toHaveLength(5);
    // Every minute of the window the whole catalog can restore to, the kept backups can too.
    const kept = cat.backups.filter((b) => plan.keep.some((k) => k.id === b.id));
    const restore = (backups: readonly Manifest[], at: string): boolean =>
      planRestore({ cluster: 'shop', database: 'app', target: { kind: 'time', at }, backups: backups.map((m) => ({ manifest: m, relativePath: m.id })), chainState: null, now: new Date(NOW) }).ok;
    let restorable = 0;
    for (let t = NOW - durationMs(window); t <= NOW; t += 60_000) {
      const at = new Date(t).toISOString().replace('.000Z', 'Z');
      if (!restore(cat.backups, at)) continue;
      restorable++;
      expect([at, restore(kept, at)]).toEqual([at, true]);
    }
    expect(restorable).toBeGreaterThan(3000);
    // Between a chain's last incremental and the next full's end, no catalog can restore (not retention's doing).
    expect(restore(cat.backups, '2026-11-19T02:10:00Z')).toBe(false);
    expect(restore(kept, '2026-11-19T02:31:00Z')).toBe(true);
    expect(checkPlanSafe(cat.backups, plan, { now: new Date(NOW), config: c })).toEqual([]);
  });

  test('a window that reaches before the oldest full keeps every chain and says so', () => {
    const cat = new Catalog();
    cat.full(NOW - 2 * DAY);
    cat.incremental(NOW - DAY);
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: config({ policies: { full: { days: 0, minCount: 0 }, incremental: { days: 0, minCount: 0 } } }) });
    expect(plan.delete).toEqual([]);
    expect(plan.warnings).toEqual([expect.stringMatching(/^the point-in-time window 7d starts at 2026-11-15T12:00:00.000Z, before the oldest full backup .* its start is not restorable$/)]);
    const none = planRetention({ backups: [], now: new Date(NOW), config: config() });
    expect(none.warnings).toEqual(['no full backup: the point-in-time window 7d (from 2026-11-15T12:00:00.000Z) is not restorable']);
  });

  test('schema and emergency backups are standalone: no window, no chain, their own policies', () => {
    const cat = new Catalog();
    cat.full(NOW - 60 * DAY);
    const emergencies = [20, 15, 12, 10, 9].map((d) => cat.standalone('emergency', NOW - d * DAY));
    const schemas = [120, 100, 95].map((d) => cat.standalone('schema', NOW - d * DAY));
    cat.full(NOW - DAY);
    const c = config({ pointInTimeWindow: '90d', policies: { schema: { minCount: 1 } } });
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: c });
    expect(ids(plan.delete)).toEqual([schemas[0]!.id, schemas[1]!.id, emergencies[0]!.id, emergencies[1]!.id]);
    expect(plan.delete.find((d) => d.id === emergencies[0]!.id)?.reason).toBe('older than 7 days (20 days old) and 4 newer emergency backups exist');
    expect(plan.delete.find((d) => d.id === schemas[0]!.id)?.reason).toBe('older than 90 days (120 days old) and 2 newer schema backups exist');
    expect(keptReasons(plan, schemas[2]!.id)).toEqual(['kept: newest 1 schema']);
    expect(keptReasons(plan, emergencies[2]!.id)).toEqual(['kept: newest 3 emergency']);
    // Both fulls stay: the 90-day window starts before the oldest.
    expect(plan.keep.filter((k) => k.type === 'full')).toHaveLength(2);
  });

  test('storage pressure: the oldest unprotected go, each with its chain, until under warnAt', () => {
    const cat = new Catalog();
    const chains: Manifest[][] = [];
    for (let d = 6; d >= 0; d--) {
      const f = cat.full(NOW - d * DAY - 6 * HOUR, { bytes: 10_000 });
      chains.push([f, cat.incremental(NOW - d * DAY - 3 * HOUR, { bytes: 1_000 }), cat.incremental(NOW - d * DAY - 2 * HOUR, { bytes: 1_000 })]);
    }
    const young = cat.standalone('schema', NOW - HOUR, { bytes: 5_000 });
    // 7 * 12 000 + 5 000 = 89 000 bytes; all within their days, so nothing would go by age.
    const base = { pointInTimeWindow: '1d', policies: { full: { minCount: 2 }, incremental: { minCount: 2 }, schema: { minCount: 1 } } };
    const relaxed = planRetention({ backups: cat.backups, now: new Date(NOW), config: config({ ...base, maxBytes: 100_000 }) });
    expect(relaxed.delete).toEqual([]);
    expect(relaxed.storage).toMatchObject({ usedBytes: 89_000, usedFraction: 0.89, level: 'warning', bytesAfter: 89_000 });
    expect(relaxed.warnings).toEqual(['storage at 89% of 97.7 KiB (warning at 80%, cleanup at 90%)']);

    const c = config({ ...base, maxBytes: 92_000 });
    const plan = planRetention({ backups: cat.backups, now: new Date(NOW), config: c });
    expect(plan.storage.level).toBe('cleanup');
    // 89 000 -> under 0.8 * 92 000 = 73 600: two chains of 12 000 go (65 000 left), oldest first.
    expect(ids(plan.delete)).toEqual([...ids(chains[0]!), ...ids(chains[1]!)]);
    expect(plan.delete[0]?.reason).toBe('storage at 96.7% of 89.8 KiB (cleanup at 90%): the oldest backup outside minCount and the point-in-time window goes early');
    expect(plan.delete[1]?.reason).toBe(`storage at 96.7% of 89.8 KiB (cleanup at 90%): built on full ${chains[0]![0]!.id}, which goes`);
    expect(plan.storage.bytesAfter).toBe(65_000);
    expect(plan.warnings).toEqual([]);
    expect(checkPlanSafe(cat.backups, plan, { now: new Date(NOW), config: c })).toEqual([]);
    expect(keptReasons(plan, young.id)).toEqual(['kept: newest 1 schema', 'kept: within 90 days (0 days old)']);

    // A limit it cannot get under: everything not protected goes, minCount and the window stay, and it says so.
    const tight = config({ ...base, maxBytes: 30_000 });
    const over = planRetention({ backups: cat.backups, now: new Date(NOW), config: tight });
    expect(over.storage.level).toBe('over');
    const keptIds = ids(over.keep);
    // The window (1 day) needs the full of yesterday and today's; minCount 2 fulls; the schema backup (minCount 1).
    expect(keptIds).toEqual([...ids(chains[5]!), ...ids(chains[6]!), young.id]);
    expect(over.warnings).toEqual([
      'storage stays at 96.7% of 29.3 KiB after cleanup (goal: under 80%): the rest is protected by minCount, the point-in-time window 1d, or chains they need',
      'the plan deletes 15 backups (more than 10): it needs approval',
    ]);
    expect(checkPlanSafe(cat.backups, over, { now: new Date(NOW), config: tight })).toEqual([]);
    // A reported usage (e.g. the repository's du) counts instead of the manifests' sum.
    const reported = planRetention({ backups: cat.backups, now: new Date(NOW), config: c, storage: { usedBytes: 50_000 } });
    expect(reported.storage).toMatchObject({ usedBytes: 50_000, level: 'ok', bytesAfter: 50_000 });
  });

  test('more deletions than approvalAbove need approval', () => {
    const cat = new Catalog();
    for (let i = 0; i < 12; i++) cat.standalone('emergency', NOW - (30 - i) * DAY);
    const c = (approvalAbove: number): RetentionConfig => config({ approvalAbove, policies: { emergency: { minCount: 8 } } });
    const four = planRetention({ backups: cat.backups, now: new Date(NOW), config: c(3) });
    expect(four.delete).toHaveLength(4);
    expect(four.needsApproval).toBe(true);
    expect(four.warnings).toContain('the plan deletes 4 backups (more than 3): it needs approval');
    expect(planRetention({ backups: cat.backups, now: new Date(NOW), config: c(4) }).needsApproval).toBe(false);
    expect(planRetention({ backups: cat.backups, now: new Date(NOW), config: config({ policies: { emergency: { minCount: 0 } } }) })).toMatchObject({ needsApproval: true });
  });

  test('a backup whose time cannot be read is kept, with a warning', () => {
    const odd = { ...mk({ type: 'emergency', at: NOW - 100 * DAY }), startedAt: 'yesterday' };
    const plan = planRetention({ backups: [odd], now: new Date(NOW), config: config({ policies: { emergency: { minCount: 0 } } }) });
    expect(plan.delete).toEqual([]);
    expect(plan.keep[0]?.reasons).toEqual(['kept: its startedAt "yesterday" is not a time']);
    expect(plan.warnings).toContain(`emergency ${odd.id} has an unreadable startedAt ("yesterday"): kept`);
  });

  test('backups of several clusters: nothing is deleted', () => {
    const a = mk({ type: 'emergency', at: NOW - 100 * DAY, cluster: 'a' });
    const b = mk({ type: 'emergency', at: NOW - 100 * DAY + 1, cluster: 'b', id: '20260101T000000.001Z-emergency' });
    const plan = planRetention({ backups: [a, b], now: new Date(NOW), config: config({ policies: { emergency: { minCount: 0 } } }) });
    expect(plan.delete).toEqual([]);
    expect(plan.warnings).toEqual(['backups of several clusters (a, b): retention plans one cluster at a time, so nothing is deleted']);
  });
});

describe('checkPlanSafe', () => {
  const cat = new Catalog();
  const full = cat.full(NOW - 50 * DAY);
  const inc = cat.incremental(NOW - 49 * DAY);
  const newest = cat.full(NOW - DAY);

  test('finds deleted parents and fulls, unknown, doubled and forgotten ids', () => {
    expect(
      checkPlanSafe(cat.backups, {
        delete: [{ id: full.id, type: 'full', bytes: 1, reason: 'x' }, { id: 'ghost', type: 'full', bytes: 1, reason: 'x' }],
        keep: [{ id: inc.id, type: 'incremental', reasons: [] }, { id: inc.id, type: 'incremental', reasons: [] }],
      }),
    ).toEqual([
      'the plan deletes ghost, which is not in the catalog',
      `the plan keeps ${inc.id} twice`,
      `kept incremental ${inc.id} needs its parent ${full.id}, which the plan deletes`,
      `kept incremental ${inc.id} needs its full ${full.id}, which the plan deletes`,
      `the plan neither keeps nor deletes full ${newest.id}`,
    ]);
  });

  test('with the planning context: minCount and the window', () => {
    const c = config({ policies: { full: { minCount: 1 } }, pointInTimeWindow: '1h' });
    const plan = {
      delete: [{ id: newest.id, type: 'full' as const, bytes: 1, reason: 'x' }],
      keep: [{ id: full.id, type: 'full' as const, reasons: [] }, { id: inc.id, type: 'incremental' as const, reasons: [] }],
    };
    expect(checkPlanSafe(cat.backups, plan, { now: new Date(NOW), config: c })).toEqual([
      `${newest.id} is deleted, but it is among the newest 1 full`,
      `${newest.id} is deleted, but the point-in-time window 1h needs it`,
    ]);
  });
});

// ---------------------------------------------------------------------------------------
// Property test: random catalogs, random policies; the plan must always be safe.

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  backups: Manifest[];
  now: Date;
  config: RetentionConfig;
}

function randomScenario(seed: number): Scenario {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const now = NOW + int(0, 86_400) * 1000;
  const cat = new Catalog();
  const fullEvery = pick([1, 1, 2, 3, 7]); // days
  const incEvery = pick([1, 2, 4, 6, 12]); // hours
  const diffP = pick([0, 0.05, 0.15]);
  const gapP = pick([0, 0.01, 0.05]);
  let broken = false;
  for (let t = now - int(20, 60) * DAY; t < now - HOUR; t += HOUR) {
    const hour = Math.floor((t - (now - 90 * DAY)) / HOUR);
    const at = t + int(0, 20) * 60_000;
    const minutes = int(1, 39);
    if (rnd() < 0.004) cat.standalone('schema', at, { minutes, bytes: int(10, 100) });
    else if (rnd() < 0.004) cat.standalone('emergency', at, { minutes, bytes: int(1_000, 50_000) });
    else if (!cat.hasBase() || broken || (hour % (24 * fullEvery) === 0 && rnd() < 0.95)) {
      cat.full(at, { minutes, bytes: int(10_000, 100_000) });
      broken = false;
    } else if (rnd() < gapP) broken = true; // a gap: the next run takes a full
    else if (rnd() < diffP) cat.differential(at, { minutes, bytes: int(1_000, 20_000) });
    else if (hour % incEvery === 0) cat.incremental(at, { minutes, bytes: int(100, 5_000) });
  }
  const policy = (): { days: number; minCount: number } => ({ days: int(0, 40), minCount: int(0, 10) });
  const total = cat.backups.reduce((n, b) => n + totalStoredBytes(b), 0);
  const warnAt = pick([0.5, 0.7, 0.8]);
  const input: RetentionConfigInput = {
    policies: { full: policy(), incremental: policy(), differential: policy(), schema: policy(), emergency: policy() },
    pointInTimeWindow: pick(['0s', '30m', '1h', '12h', '1d', '3d', '7d', '14d', '90d']),
    warnAt,
    cleanupAt: Math.min(1, warnAt + pick([0, 0.1, 0.2])),
    approvalAbove: int(0, 40),
  };
  if (rnd() < 0.6) input.maxBytes = Math.max(1, Math.round(total * (0.3 + rnd() * 1.5)));
  return { backups: cat.backups, now: new Date(now), config: config(input) };
}

/** Independent of the planner: a full finished by t, and a chain on it whose every link exists, started at or after t. */
function restorableAt(backups: readonly Manifest[]): (t: number) => boolean {
  const byId = new Map(backups.map((b) => [b.id, b]));
  // For each member: its start, and its full's finish when its whole parent chain exists (else it covers nothing).
  const covering: Array<{ start: number; fullFinished: number }> = [];
  for (const m of backups) {
    if ((m.type !== 'incremental' && m.type !== 'differential') || !m.baseFullId) continue;
    const full = byId.get(m.baseFullId);
    if (!full) continue;
    let link: Manifest | undefined = m;
    while (link && link.id !== full.id) link = link.parentId ? byId.get(link.parentId) : undefined;
    if (link) covering.push({ start: Date.parse(m.startedAt), fullFinished: Date.parse(full.finishedAt) });
  }
  return (t) => covering.some((c) => c.start >= t && c.fullFinished <= t);
}

describe('planRetention, property-based (300 seeded random catalogs)', () => {
  test('safe plans, the window stays restorable, minCount is never broken', () => {
    const stats = { deleted: 0, pressure: 0, pressureDeleted: 0, approvals: 0, instantsChecked: 0, restoreChecks: 0, cannotGetUnder: 0 };
    const problems: string[] = [];
    for (let seed = 1; seed <= 300; seed++) {
      validate = seed % 50 === 1;
      const { backups, now, config: c } = randomScenario(seed);
      validate = true;
      const plan = planRetention({ backups, now, config: c });
      const problem = (text: string): void => {
        problems.push(`seed ${seed}: ${text}`);
      };

      for (const v of checkPlanSafe(backups, plan, { now, config: c })) problem(v);
      if (plan.delete.length + plan.keep.length !== backups.length) problem('delete + keep is not the catalog');
      const deleted = new Set(ids(plan.delete));
      const kept = backups.filter((b) => !deleted.has(b.id));

      // The newest minCount of every type stay.
      const policies = effectivePolicies(c);
      for (const type of ['full', 'incremental', 'differential', 'schema', 'emergency'] as const) {
        const ofType = backups.filter((b) => b.type === type);
        for (const b of ofType.slice(Math.max(0, ofType.length - policies[type].minCount))) {
          if (deleted.has(b.id)) problem(`${b.id} is among the newest ${policies[type].minCount} ${type} but deleted`);
        }
      }

      // Bytes add up; without storage pressure only backups older than their days go.
      const freed = plan.delete.reduce((n, d) => n + d.bytes, 0);
      if (plan.storage.bytesAfter !== plan.storage.usedBytes - freed) problem(`bytesAfter ${plan.storage.bytesAfter} is not used - freed`);
      const underPressure = plan.storage.level === 'cleanup' || plan.storage.level === 'over';
      if (!underPressure) {
        for (const b of backups) {
          if (deleted.has(b.id) && now.getTime() - Date.parse(b.startedAt) <= policies[b.type].days * DAY) problem(`${b.id} deleted within its ${policies[b.type].days} days`);
        }
        // Not greedy for nothing: whatever stays has a rule that keeps it.
        for (const k of plan.keep) {
          if (!k.reasons.some((r) => /newest|within|window|needed by/.test(r))) problem(`${k.id} kept without a reason: ${k.reasons.join('; ')}`);
        }
      } else {
        stats.pressure++;
        if (plan.delete.some((d) => d.reason.startsWith('storage at'))) stats.pressureDeleted++;
        if (plan.storage.bytesAfter >= c.warnAt * (c.maxBytes as number)) {
          stats.cannotGetUnder++;
          if (!plan.warnings.some((w) => w.startsWith('storage stays at'))) problem('over the goal after cleanup, without a warning');
        }
      }
      if (plan.needsApproval !== plan.delete.length > c.approvalAbove) problem('needsApproval does not follow approvalAbove');
      if (plan.needsApproval) stats.approvals++;
      stats.deleted += plan.delete.length;

      // Every instant of the window that was restorable before is restorable after.
      const windowStart = now.getTime() - durationMs(c.pointInTimeWindow);
      const instants = Array.from({ length: 50 }, (_, i) => Math.floor((windowStart + ((now.getTime() - windowStart) * i) / 49) / 1000) * 1000);
      // Densely near the window start, where the anchoring full matters most.
      for (let k = 0; k <= 36; k++) instants.push(Math.ceil(windowStart / 1000) * 1000 + k * 10 * 60_000);
      const before = restorableAt(backups);
      const after = restorableAt(kept);
      for (const t of instants) {
        if (t < windowStart || t > now.getTime() || !before(t)) continue;
        stats.instantsChecked++;
        if (!after(t)) problem(`${new Date(t).toISOString()} was restorable and is not after the plan`);
      }
      // And the restore planner itself agrees, at a few of them.
      const restore = (set: readonly Manifest[], at: string): boolean =>
        planRestore({ cluster: 'shop', database: 'app', target: { kind: 'time', at }, backups: set.map((m) => ({ manifest: m, relativePath: m.id })), chainState: null, now }).ok;
      for (const t of instants.filter((_, i) => i % 10 === 0)) {
        const at = new Date(t).toISOString().replace('.000Z', 'Z');
        if (t < windowStart || t > now.getTime() || !restore(backups, at)) continue;
        stats.restoreChecks++;
        if (!restore(kept, at)) problem(`planRestore could reach ${at} before the plan, not after`);
      }
    }
    expect(problems.slice(0, 20)).toEqual([]);
    // The generator exercises every path.
    expect(stats.deleted).toBeGreaterThan(1000);
    expect(stats.pressure).toBeGreaterThan(20);
    expect(stats.pressureDeleted).toBeGreaterThan(10);
    expect(stats.cannotGetUnder).toBeGreaterThan(0);
    expect(stats.approvals).toBeGreaterThan(20);
    expect(stats.instantsChecked).toBeGreaterThan(3000);
    expect(stats.restoreChecks).toBeGreaterThan(300);
  });
});
