/**
 * Copies of backups in further repositories: what a copy is missing and in which order to
 * copy it, and how far behind it is. Pure: the copy workflow and `dbops storage info` ask
 * here.
 */
import type { Manifest } from './manifest';

export interface CopyPlan {
  /** Backup ids to copy, oldest first: a backup's parent always comes before it. */
  copy: string[];
  /** Backups that cannot be copied yet, and why (a parent missing everywhere). */
  held: Array<{ id: string; why: string }>;
}

const byStart = (a: Manifest, b: Manifest) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id);

/** What a backup builds on: its parent, and the full its chain starts from. */
function dependencies(m: Manifest): string[] {
  return [...new Set([m.parentId, m.baseFullId].filter((id): id is string => id !== null))];
}

/** What `copy` lacks of `primary`, in an order that never publishes a backup before its parent in the copy. */
export function planCopies(primary: readonly Manifest[], copy: readonly Manifest[]): CopyPlan {
  const present = new Set(copy.map((m) => m.id));
  const inPrimary = new Set(primary.map((m) => m.id));
  const plan: CopyPlan = { copy: [], held: [] };
  for (const m of [...primary].sort(byStart)) {
    if (present.has(m.id)) continue;
    const absent = dependencies(m).find((d) => !present.has(d));
    if (absent) {
      plan.held.push({ id: m.id, why: inPrimary.has(absent) ? `${absent}, which it builds on, could not be copied` : `${absent}, which it builds on, is in neither repository` });
      continue;
    }
    plan.copy.push(m.id);
    present.add(m.id); // its children may follow in the same run
  }
  return plan;
}

export interface CopyLag {
  /** Backups of the primary the copy does not hold. */
  missing: number;
  /** The oldest of them: how long it has waited, in seconds (0 when nothing is missing). */
  lagSeconds: number;
  oldestMissing: string | null;
}

export function copyLag(primary: readonly Manifest[], copy: readonly Manifest[], now: Date): CopyLag {
  const present = new Set(copy.map((m) => m.id));
  const missing = [...primary].sort(byStart).filter((m) => !present.has(m.id));
  const oldest = missing[0];
  return {
    missing: missing.length,
    lagSeconds: oldest ? Math.max(0, Math.round((now.getTime() - Date.parse(oldest.finishedAt)) / 1000)) : 0,
    oldestMissing: oldest?.id ?? null,
  };
}

/**
 * The ids a retention plan must not delete from the primary because a copy does not hold
 * them yet, closed over parents: keeping an incremental keeps the backups it builds on.
 */
export function notYetCopied(primary: readonly Manifest[], copies: ReadonlyArray<readonly Manifest[]>): Set<string> {
  const byId = new Map(primary.map((m) => [m.id, m]));
  const held = new Set<string>();
  for (const copy of copies) {
    const present = new Set(copy.map((m) => m.id));
    for (const m of primary) if (!present.has(m.id)) held.add(m.id);
  }
  const pending = [...held];
  while (pending.length > 0) {
    const m = byId.get(pending.pop() as string);
    for (const d of m ? dependencies(m) : []) {
      if (!held.has(d)) {
        held.add(d);
        pending.push(d);
      }
    }
  }
  return held;
}
