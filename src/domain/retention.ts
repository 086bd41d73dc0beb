/**
 * Retention: which backups of one cluster may go, and why every other one stays.
 * Pure: the retention workflow plans with it, and checks the plan again with
 * checkPlanSafe before an activity deletes anything. Kept in one file (a little over 400
 * lines) so the rules below and the code that enforces them are read together.
 *
 * A backup is a deletion candidate when it is older than its type's `days` AND at least
 * `minCount` newer backups of its type exist (the newest `minCount` always stay). Then:
 *
 * - Dependencies: a kept incremental or differential pins its parent chain (parentId, up to
 *   the full) and its baseFullId. Nothing a kept backup needs is ever deleted.
 * - Point-in-time window: every second of [now - pointInTimeWindow, now] stays restorable.
 *   That needs the newest full whose snapshot is known to be at or before the window start,
 *   and every chain from there on: that full, every incremental/differential built on it,
 *   every later full and their chains. "Known to be at or before" uses finishedAt, as the
 *   restore planner does (a dump's snapshot is taken somewhere between start and finish).
 * - Storage pressure: when maxBytes is set and usage reaches cleanupAt, the oldest backups
 *   that are not protected (newest minCount, the window, or needed by a protected backup)
 *   also go, ignoring `days`, each together with everything that depends on it, until usage
 *   is under warnAt or nothing more can go.
 *
 * Schema and emergency backups are standalone: no chain depends on them.
 */
import { z } from 'zod';
import { durationMs, durationSchema } from './duration';
import { BACKUP_TYPES, totalStoredBytes, type BackupType, type Manifest } from './manifest';
import { formatBytes } from './naming';

export interface RetentionPolicy {
  /** Backups older than this many days may go (when enough newer ones exist). */
  days: number;
  /** The newest minCount backups of the type always stay, whatever their age. */
  minCount: number;
}

/**
 * Defaults. Differentials: 7 days / 14 — two a day (10:00 and 16:00), so 14 is a
 * week of them, the same horizon as incrementals (4-hourly: 28 is about five days).
 */
export const DEFAULT_RETENTION: Readonly<Record<BackupType, RetentionPolicy>> = {
  full: { days: 30, minCount: 7 },
  incremental: { days: 7, minCount: 28 },
  differential: { days: 7, minCount: 14 },
  schema: { days: 90, minCount: 10 },
  emergency: { days: 7, minCount: 3 },
};

const duration = durationSchema('a duration such as 90s, 15m, 4h or 7d');

export { durationMs } from './duration';

const PolicyOverrideSchema = z.strictObject({
  days: z.number().int().nonnegative().optional(),
  minCount: z.number().int().nonnegative().optional(),
});

export const RetentionConfigSchema = z
  .strictObject({
    /** Per type; a missing type or field takes DEFAULT_RETENTION's value. */
    policies: z
      .strictObject({
        full: PolicyOverrideSchema.optional(),
        incremental: PolicyOverrideSchema.optional(),
        differential: PolicyOverrideSchema.optional(),
        schema: PolicyOverrideSchema.optional(),
        emergency: PolicyOverrideSchema.optional(),
      })
      .default({}),
    /** Any second within this long before now must stay restorable. */
    pointInTimeWindow: duration.default('7d'),
    /** Storage limit of the cluster's backups (stored bytes); unset: unlimited. */
    maxBytes: z.number().int().positive().optional(),
    /** Fraction of maxBytes that raises a warning; cleanup brings usage back under it. */
    warnAt: z.number().gt(0).lte(1).default(0.8),
    /** Fraction of maxBytes that makes retention delete beyond the age rules. */
    cleanupAt: z.number().gt(0).lte(1).default(0.9),
    /** A plan deleting more backups than this waits for a person's approval. */
    approvalAbove: z.number().int().nonnegative().default(10),
  })
  .refine((c) => c.warnAt <= c.cleanupAt, { message: 'warnAt must not be above cleanupAt', path: ['warnAt'] });
export type RetentionConfig = z.output<typeof RetentionConfigSchema>;
export type RetentionConfigInput = z.input<typeof RetentionConfigSchema>;

export function effectivePolicies(config: Pick<RetentionConfig, 'policies'>): Record<BackupType, RetentionPolicy> {
  const out = {} as Record<BackupType, RetentionPolicy>;
  for (const type of BACKUP_TYPES) {
    const override = config.policies[type];
    out[type] = {
      days: override?.days ?? DEFAULT_RETENTION[type].days,
      minCount: override?.minCount ?? DEFAULT_RETENTION[type].minCount,
    };
  }
  return out;
}

export type StorageLevel = 'ok' | 'warning' | 'cleanup' | 'over' | 'unlimited';

export interface RetentionPlan {
  /** Oldest first. */
  delete: Array<{ id: string; type: BackupType; bytes: number; reason: string }>;
  /** Oldest first; every backup of the input is in exactly one of delete and keep. */
  keep: Array<{ id: string; type: BackupType; reasons: string[] }>;
  storage: {
    usedBytes: number;
    maxBytes: number | null;
    usedFraction: number | null;
    /** From usage before the plan: warning >= warnAt, cleanup >= cleanupAt, over > 1. */
    level: StorageLevel;
    bytesAfter: number;
    fractionAfter: number | null;
  };
  needsApproval: boolean;
  warnings: string[];
}

export interface RetentionInput {
  /** One cluster's verified backups, any types (sorted by startedAt; sorted again here). */
  backups: readonly Manifest[];
  now: Date;
  config: RetentionConfig;
  /** Bytes the cluster uses in the repository; default: the stored bytes of `backups`. */
  storage?: { usedBytes: number };
}

const DAY_MS = 86_400_000;

function sortedByStart(backups: readonly Manifest[]): Manifest[] {
  return [...backups].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt) || a.id.localeCompare(b.id));
}

/** The backups this one needs to be restorable: its parent and its chain's full. */
function directDependencies(m: Manifest): string[] {
  if (m.type !== 'incremental' && m.type !== 'differential') return [];
  const deps: string[] = [];
  if (m.parentId) deps.push(m.parentId);
  if (m.baseFullId && m.baseFullId !== m.parentId) deps.push(m.baseFullId);
  return deps;
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

/** The newest `minCount` of each type: id -> "kept: newest 7 full". */
function newestPerType(backups: readonly Manifest[], policies: Record<BackupType, RetentionPolicy>): Map<string, string> {
  const out = new Map<string, string>();
  for (const type of BACKUP_TYPES) {
    const ofType = backups.filter((b) => b.type === type);
    const { minCount } = policies[type];
    for (const b of ofType.slice(Math.max(0, ofType.length - minCount))) out.set(b.id, `kept: newest ${minCount} ${type}`);
  }
  return out;
}

/**
 * Chain backups the point-in-time window needs: the newest full finished at or before the
 * window start, every later full, and every incremental/differential built on those fulls.
 */
function windowNeeds(backups: readonly Manifest[], windowStartMs: number): { ids: Set<string>; anchor: Manifest | null } {
  const fulls = backups.filter((b) => b.type === 'full');
  const before = fulls.filter((f) => Date.parse(f.finishedAt) <= windowStartMs);
  const anchor = before[before.length - 1] ?? fulls[0] ?? null;
  const ids = new Set<string>();
  if (!anchor) return { ids, anchor };
  const anchorStart = Date.parse(anchor.startedAt);
  for (const f of fulls) if (f.id === anchor.id || Date.parse(f.startedAt) >= anchorStart) ids.add(f.id);
  for (const b of backups) {
    if ((b.type === 'incremental' || b.type === 'differential') && b.baseFullId && ids.has(b.baseFullId)) ids.add(b.id);
  }
  return { ids, anchor };
}

export function planRetention(input: RetentionInput): RetentionPlan {
  const { config, now } = input;
  const nowMs = now.getTime();
  const backups = sortedByStart(input.backups);
  const byId = new Map(backups.map((b) => [b.id, b]));
  const bytesOf = new Map(backups.map((b) => [b.id, totalStoredBytes(b)]));
  const policies = effectivePolicies(config);
  const warnings: string[] = [];

  const usedBytes = input.storage?.usedBytes ?? backups.reduce((n, b) => n + (bytesOf.get(b.id) ?? 0), 0);
  const maxBytes = config.maxBytes ?? null;
  const usedFraction = maxBytes === null ? null : usedBytes / maxBytes;
  const level: StorageLevel =
    usedFraction === null
      ? 'unlimited'
      : usedFraction > 1
        ? 'over'
        : usedFraction >= config.cleanupAt
          ? 'cleanup'
          : usedFraction >= config.warnAt
            ? 'warning'
            : 'ok';

  const clusters = [...new Set(backups.map((b) => b.cluster))];
  if (clusters.length > 1) {
    warnings.push(`backups of several clusters (${clusters.join(', ')}): retention plans one cluster at a time, so nothing is deleted`);
    return {
      delete: [],
      keep: backups.map((b) => ({ id: b.id, type: b.type, reasons: ['kept: the catalog mixes clusters'] })),
      storage: { usedBytes, maxBytes, usedFraction, level, bytesAfter: usedBytes, fractionAfter: usedFraction },
      needsApproval: false,
      warnings,
    };
  }

  const keepReasons = new Map<string, string[]>(backups.map((b) => [b.id, []]));
  const addReason = (id: string, reason: string): void => {
    const list = keepReasons.get(id);
    if (list && !list.includes(reason)) list.push(reason);
  };
  /** Protected even under storage pressure: newest minCount and the window. */
  const hardProtected = new Set<string>();
  const deleteReason = new Map<string, string>();

  // 1. Age and count, per type.
  const newest = newestPerType(backups, policies);
  for (const type of BACKUP_TYPES) {
    const ofType = backups.filter((b) => b.type === type);
    const { days, minCount } = policies[type];
    ofType.forEach((b, index) => {
      const newer = ofType.length - 1 - index;
      const ageDays = (nowMs - Date.parse(b.startedAt)) / DAY_MS;
      const protectedReason = newest.get(b.id);
      if (Number.isNaN(ageDays)) {
        hardProtected.add(b.id);
        addReason(b.id, `kept: its startedAt "${b.startedAt}" is not a time`);
        warnings.push(`${type} ${b.id} has an unreadable startedAt ("${b.startedAt}"): kept`);
        return;
      }
      if (protectedReason) {
        hardProtected.add(b.id);
        addReason(b.id, protectedReason);
      }
      if (ageDays <= days) {
        addReason(b.id, `kept: within ${days} days (${Math.floor(ageDays)} days old)`);
      } else if (!protectedReason && newer >= minCount) {
        deleteReason.set(b.id, `older than ${days} days (${Math.floor(ageDays)} days old) and ${newer} newer ${type} backups exist`);
      }
    });
  }

  // 2. The point-in-time window.
  const windowStartMs = nowMs - durationMs(config.pointInTimeWindow);
  const windowLabel = config.pointInTimeWindow.replace(/\s+/g, '');
  const { ids: windowIds, anchor } = windowNeeds(backups, windowStartMs);
  for (const id of windowIds) {
    hardProtected.add(id);
    deleteReason.delete(id);
    addReason(id, `kept: point-in-time window ${windowLabel} needs this chain`);
  }
  const windowStartIso = new Date(windowStartMs).toISOString();
  if (!anchor) {
    warnings.push(`no full backup: the point-in-time window ${windowLabel} (from ${windowStartIso}) is not restorable`);
  } else if (Date.parse(anchor.finishedAt) > windowStartMs) {
    warnings.push(`the point-in-time window ${windowLabel} starts at ${windowStartIso}, before the oldest full backup ${anchor.id} (finished ${anchor.finishedAt}): its start is not restorable`);
  }

  // 3. Dependencies: whatever a kept backup needs is kept (transitively).
  const deleted = (id: string): boolean => deleteReason.has(id);
  const queue = backups.filter((b) => !deleted(b.id));
  for (let next = queue.shift(); next; next = queue.shift()) {
    for (const dep of directDependencies(next)) {
      const target = byId.get(dep);
      if (target && deleted(dep)) {
        deleteReason.delete(dep);
        queue.push(target);
      }
    }
  }
  for (const b of backups) {
    for (const dep of directDependencies(b)) {
      if (!byId.has(dep)) warnings.push(`${b.type} ${b.id} needs ${dep}, which is not in the catalog: it cannot be restored`);
    }
  }

  // 4. Storage pressure: oldest unprotected backups go, each with everything built on it.
  let bytesAfter = usedBytes - sumBytes([...deleteReason.keys()], bytesOf);
  const dependents = new Map<string, Manifest[]>();
  for (const b of backups) {
    for (const dep of directDependencies(b)) {
      const list = dependents.get(dep);
      if (list) list.push(b);
      else dependents.set(dep, [b]);
    }
  }
  if (maxBytes !== null && usedFraction !== null && usedFraction >= config.cleanupAt) {
    const goal = config.warnAt * maxBytes;
    const pressure = `storage at ${percent(usedFraction)} of ${formatBytes(maxBytes)} (cleanup at ${percent(config.cleanupAt)})`;
    for (const root of backups) {
      if (bytesAfter < goal) break;
      if (deleted(root.id) || hardProtected.has(root.id)) continue;
      const unit = withDependents(root, dependents).filter((m) => !deleted(m.id));
      if (unit.some((m) => hardProtected.has(m.id))) continue;
      for (const m of unit) {
        deleteReason.set(
          m.id,
          m.id === root.id
            ? `${pressure}: the oldest backup outside minCount and the point-in-time window goes early`
            : `${pressure}: built on ${root.type} ${root.id}, which goes`,
        );
        bytesAfter -= bytesOf.get(m.id) ?? 0;
      }
    }
    if (bytesAfter >= goal) {
      warnings.push(
        `storage stays at ${percent(bytesAfter / maxBytes)} of ${formatBytes(maxBytes)} after cleanup (goal: under ${percent(config.warnAt)}): ` +
          `the rest is protected by minCount, the point-in-time window ${windowLabel}, or chains they need`,
      );
    }
  } else if (maxBytes !== null && usedFraction !== null && usedFraction >= config.warnAt) {
    warnings.push(`storage at ${percent(usedFraction)} of ${formatBytes(maxBytes)} (warning at ${percent(config.warnAt)}, cleanup at ${percent(config.cleanupAt)})`);
  }
  bytesAfter = Math.max(0, bytesAfter);

  // Reasons for the kept: who needs them.
  for (const b of backups) {
    if (deleted(b.id)) continue;
    const needers = (dependents.get(b.id) ?? []).filter((d) => !deleted(d.id));
    const first = needers[needers.length - 1];
    if (first) {
      addReason(b.id, needers.length === 1 ? `kept: needed by ${first.type} ${first.id}` : `kept: needed by ${needers.length} kept backups (newest: ${first.type} ${first.id})`);
    }
  }

  const del = backups
    .filter((b) => deleted(b.id))
    .map((b) => ({ id: b.id, type: b.type, bytes: bytesOf.get(b.id) ?? 0, reason: deleteReason.get(b.id) ?? '' }));
  const keep = backups
    .filter((b) => !deleted(b.id))
    .map((b) => {
      const reasons = keepReasons.get(b.id) ?? [];
      return { id: b.id, type: b.type, reasons: reasons.length ? reasons : ['kept'] };
    });
  const needsApproval = del.length > config.approvalAbove;
  if (needsApproval) warnings.push(`the plan deletes ${del.length} backups (more than ${config.approvalAbove}): it needs approval`);
  return {
    delete: del,
    keep,
    storage: { usedBytes, maxBytes, usedFraction, level, bytesAfter, fractionAfter: maxBytes === null ? null : bytesAfter / maxBytes },
    needsApproval,
    warnings,
  };
}

function sumBytes(ids: readonly string[], bytesOf: ReadonlyMap<string, number>): number {
  return ids.reduce((n, id) => n + (bytesOf.get(id) ?? 0), 0);
}

/** The backup and everything that (transitively) depends on it, oldest first. */
function withDependents(root: Manifest, dependents: ReadonlyMap<string, Manifest[]>): Manifest[] {
  const seen = new Map<string, Manifest>([[root.id, root]]);
  const queue = [root];
  for (let next = queue.shift(); next; next = queue.shift()) {
    for (const d of dependents.get(next.id) ?? []) {
      if (!seen.has(d.id)) {
        seen.set(d.id, d);
        queue.push(d);
      }
    }
  }
  return sortedByStart([...seen.values()]);
}

/**
 * What is wrong with a plan: an id unknown or listed twice, a backup in neither list, a kept
 * backup whose parent or full is deleted. With the planning context, also a deleted backup
 * among the newest minCount of its type, or one the point-in-time window needs. Empty: safe.
 */
export function checkPlanSafe(
  backups: readonly Manifest[],
  plan: Pick<RetentionPlan, 'delete' | 'keep'>,
  context?: { now: Date; config: RetentionConfig },
): string[] {
  const violations: string[] = [];
  const byId = new Map(backups.map((b) => [b.id, b]));
  const deleted = new Set<string>();
  const kept = new Set<string>();
  for (const d of plan.delete) {
    if (!byId.has(d.id)) violations.push(`the plan deletes ${d.id}, which is not in the catalog`);
    if (deleted.has(d.id)) violations.push(`the plan deletes ${d.id} twice`);
    deleted.add(d.id);
  }
  for (const k of plan.keep) {
    if (!byId.has(k.id)) violations.push(`the plan keeps ${k.id}, which is not in the catalog`);
    if (kept.has(k.id)) violations.push(`the plan keeps ${k.id} twice`);
    if (deleted.has(k.id)) violations.push(`the plan both keeps and deletes ${k.id}`);
    kept.add(k.id);
  }
  for (const b of backups) {
    if (!deleted.has(b.id) && !kept.has(b.id)) violations.push(`the plan neither keeps nor deletes ${b.type} ${b.id}`);
    if (deleted.has(b.id)) continue;
    if (b.parentId && deleted.has(b.parentId)) violations.push(`kept ${b.type} ${b.id} needs its parent ${b.parentId}, which the plan deletes`);
    if (b.baseFullId && deleted.has(b.baseFullId)) violations.push(`kept ${b.type} ${b.id} needs its full ${b.baseFullId}, which the plan deletes`);
  }
  if (context) {
    const sorted = sortedByStart(backups);
    const policies = effectivePolicies(context.config);
    for (const [id, reason] of newestPerType(sorted, policies)) {
      if (deleted.has(id)) violations.push(`${id} is deleted, but ${reason.replace(/^kept: /, 'it is among the ')}`);
    }
    const windowStartMs = context.now.getTime() - durationMs(context.config.pointInTimeWindow);
    for (const id of windowNeeds(sorted, windowStartMs).ids) {
      if (deleted.has(id)) violations.push(`${id} is deleted, but the point-in-time window ${context.config.pointInTimeWindow} needs it`);
    }
  }
  return violations;
}

/**
 * The plan with `ids` kept instead of deleted, for `reason`. `ids` must be closed over what
 * each builds on (a kept incremental keeps its parent chain); the storage figures after
 * the plan grow by what is kept.
 */
export function holdBack(plan: RetentionPlan, ids: ReadonlySet<string>, reason: string): RetentionPlan {
  const held = plan.delete.filter((d) => ids.has(d.id));
  if (held.length === 0) return plan;
  const heldBytes = held.reduce((n, d) => n + d.bytes, 0);
  const bytesAfter = plan.storage.bytesAfter + heldBytes;
  const keep = [...plan.keep.map((k) => (ids.has(k.id) && !k.reasons.includes(reason) ? { ...k, reasons: [...k.reasons, reason] } : k)), ...held.map((d) => ({ id: d.id, type: d.type, reasons: [reason] }))];
  keep.sort((a, b) => a.id.localeCompare(b.id)); // ids begin with their UTC start: oldest first
  return {
    ...plan,
    delete: plan.delete.filter((d) => !ids.has(d.id)),
    keep,
    storage: { ...plan.storage, bytesAfter, fractionAfter: plan.storage.maxBytes ? bytesAfter / plan.storage.maxBytes : plan.storage.fractionAfter },
    warnings: [...plan.warnings, `${held.length} backup(s) kept although retention would delete them: ${reason}`],
  };
}
