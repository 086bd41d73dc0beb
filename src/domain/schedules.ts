/**
 * Routine work as Temporal Schedules: what the config asks for, and the smallest set of
 * changes that makes the server match it. Pure. Only schedules whose id starts with
 * "dbops/" are ours: anything else on the server is left alone.
 */
import type { BackupType } from './manifest';

export const SCHEDULE_PREFIX = 'dbops/';

/** Bumped when the arguments schedules pass to workflows change shape (2: no approvers or queries in them). */
export const SCHEDULE_INPUTS_VERSION = 2;

export type ScheduledAction = 'backup-full' | 'backup-incremental' | 'backup-differential' | 'drill' | 'drill-full' | 'archive' | 'retention' | 'repo-verify' | 'query-killer';

/** The default schedules of a cluster listed in schedules.defaultsFor (hourly incrementals are one entry away). */
export const DEFAULT_SCHEDULES: ReadonlyArray<{ action: ScheduledAction; cron: string }> = [
  { action: 'backup-full', cron: '0 2 * * *' },
  { action: 'backup-incremental', cron: '0 */4 * * *' },
  { action: 'backup-differential', cron: '0 10,16 * * *' },
  // A monthly restore test (the drill), first of the month, after the nightly full.
  { action: 'drill', cron: '0 4 1 * *' },
  // A quarterly DR drill, the full profile with the failover rehearsal.
  { action: 'drill-full', cron: '0 5 1 1,4,7,10 *' },
  // Retention daily at 03:00, after the nightly full.
  { action: 'retention', cron: '0 3 * * *' },
  // The weekly usability check: every backup re-read end to end, Sunday 06:00.
  { action: 'repo-verify', cron: '0 6 * * 0' },
];

export interface DesiredSchedule {
  id: string;
  cluster: string;
  action: ScheduledAction;
  /** For backup actions; null for the others. */
  backupType: BackupType | null;
  /** For archive: the job's name. */
  job: string | null;
  cron: string | null;
  every: string | null;
  timezone: string;
  catchupWindow: string;
  /** Stored in the schedule's memo: a changed hash means "update". */
  hash: string;
}

export interface ScheduleSource {
  timezone: string;
  catchupWindow: string;
  defaultsFor: string[];
  entries: Array<{ cluster: string; action: ScheduledAction; cron?: string | undefined; every?: string | undefined; job?: string | undefined }>;
}

/** Small, stable, dependency-free string hash (FNV-1a), enough to notice a changed spec. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export function scheduleId(cluster: string, action: ScheduledAction, job: string | null = null): string {
  return `${SCHEDULE_PREFIX}${cluster}/${action}${job ? `/${job}` : ''}`;
}

/**
 * `context`: whatever else the started drills receive (targets, queries); `jobs`: the archive
 * jobs by name. A change to either updates the schedules that use it.
 */
export function desiredSchedules(source: ScheduleSource, context: unknown = null, jobs: Record<string, unknown> = {}): DesiredSchedule[] {
  const byId = new Map<string, DesiredSchedule>();
  const add = (cluster: string, action: ScheduledAction, cron: string | null, every: string | null, job: string | null = null) => {
    const id = scheduleId(cluster, action, job);
    const uses = action.startsWith('drill') ? context : action === 'archive' && job ? (jobs[job] ?? null) : null;
    // The version of what the schedules start: a change in the workflows' inputs updates every schedule.
    const shape = { id, cron, every, timezone: source.timezone, catchupWindow: source.catchupWindow, context: uses, inputs: SCHEDULE_INPUTS_VERSION };
    byId.set(id, {
      id,
      cluster,
      action,
      backupType: action.startsWith('backup-') ? (action.slice('backup-'.length) as BackupType) : null,
      job,
      cron,
      every,
      timezone: source.timezone,
      catchupWindow: source.catchupWindow,
      hash: fnv1a(JSON.stringify(shape)),
    });
  };
  for (const cluster of source.defaultsFor) for (const d of DEFAULT_SCHEDULES) add(cluster, d.action, d.cron, null);
  // Explicit entries override the defaults for the same cluster and action.
  for (const e of source.entries) add(e.cluster, e.action, e.cron ?? null, e.every ?? null, e.job ?? null);
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export interface ExistingSchedule {
  id: string;
  hash: string | null;
}

export interface ReconcilePlan {
  create: DesiredSchedule[];
  update: DesiredSchedule[];
  remove: string[];
  unchanged: string[];
}

export function planReconcile(desired: readonly DesiredSchedule[], existing: readonly ExistingSchedule[]): ReconcilePlan {
  const ours = existing.filter((e) => e.id.startsWith(SCHEDULE_PREFIX));
  const have = new Map(ours.map((e) => [e.id, e.hash]));
  const want = new Set(desired.map((d) => d.id));
  return {
    create: desired.filter((d) => !have.has(d.id)),
    update: desired.filter((d) => have.has(d.id) && have.get(d.id) !== d.hash),
    remove: ours.filter((e) => !want.has(e.id)).map((e) => e.id),
    unchanged: desired.filter((d) => have.get(d.id) === d.hash).map((d) => d.id),
  };
}
