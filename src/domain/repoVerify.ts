/**
 * Verifying a whole repository: every artifact of every backup re-read, and everything in
 * the catalog's folders that no manifest accounts for. The activities report what they
 * found; this module decides what is a problem, of which class, how serious the whole is,
 * and what the alert says. Pure: the workflow builds the report, an activity stores it.
 *
 * Classes:
 *   corrupt            an artifact whose size, checksum, decryption or decompression fails
 *   missing            an artifact the manifest lists is not there
 *   unusable-manifest  a backup folder whose manifest is damaged, altered or names another backup
 *   chain              a backup whose parent is not in the catalog: it cannot be restored
 *   orphaned           objects nothing refers to: in a backup's folder but not in its
 *                      manifest; a backup-shaped folder without a manifest, a staging folder
 *                      whose run has ended, or a deleted backup's remains, once older than
 *                      the grace period (a run may still be writing younger ones)
 */
import { z } from 'zod';
import { CLUSTER_NAME_PATTERN } from './identifiers';
import { BackupIdSchema, type BackupType } from './manifest';
import { formatBytes } from './naming';

export const VERIFY_PROBLEM_CLASSES = ['corrupt', 'missing', 'unusable-manifest', 'chain', 'orphaned'] as const;
export type VerifyProblemClass = (typeof VERIFY_PROBLEM_CLASSES)[number];

/** Classes that mean a backup cannot be restored as it is. */
const SERIOUS: ReadonlySet<VerifyProblemClass> = new Set(['corrupt', 'missing', 'unusable-manifest', 'chain']);

/** A folder or object nothing refers to is reported only once its newest object is older than this. */
export const ORPHAN_GRACE_MS = 24 * 3600 * 1000;

/** The run's start, to the second: names the stored report. */
export const VERIFY_RUN_KEY_PATTERN = /^\d{8}T\d{6}Z$/;

/** The alert event of every verification (one cooldown per cluster and severity). */
export const VERIFY_EVENT = 'repository-verify';

const DETAIL_MAX = 2000;
const KEY_MAX = 1000;

/** A published backup as listed for checking. */
export interface ListedBackup {
  id: string;
  type: BackupType;
  parentId: string | null;
  key: string;
  artifacts: number;
  /** Stored bytes, as the manifest says. */
  bytes: number;
}

export interface VerifyListing {
  cluster: string;
  /** The repository, for people (file:///…, s3://bucket/prefix (encrypted, key k1)). */
  repository: string;
  backups: ListedBackup[];
  /** Backup folders whose manifest cannot be believed. */
  unusable: Array<{ key: string; problem: string }>;
}

export interface ArtifactFinding {
  name: string;
  key: string;
  /** Stored bytes read back (0 when missing). */
  bytesRead: number;
  missing: boolean;
  problems: string[];
}

/** What re-reading one backup found. */
export type BackupFinding =
  | { id: string; outcome: 'checked'; key: string; artifacts: ArtifactFinding[] }
  /** Removed from the catalog after it was listed (retention): nothing to check. */
  | { id: string; outcome: 'gone' }
  /** Its manifest could no longer be believed when it was read again. */
  | { id: string; outcome: 'unusable'; key: string; problem: string }
  /** The check itself failed (storage unreachable past the retries): not known to be good or bad. */
  | { id: string; outcome: 'unverified'; reason: string };

/** Something in the catalog's folders that may be an orphan; `newest`: ISO time of its newest object (null: none seen). */
export type OrphanCandidate =
  | { kind: 'unlisted-object'; key: string; backupId: string }
  /** `newest` null: its age cannot be seen (a folder on an object store), judged as old. */
  | { kind: 'stray'; key: string; newest: string | null }
  | { kind: 'unpublished'; key: string; backupId: string; newest: string | null }
  | { kind: 'staging'; key: string; backupId: string; newest: string | null; owner: { workflowId: string; runId: string } | null; ownerRunning: boolean | null }
  | { kind: 'trash'; key: string; backupId: string; newest: string | null };

export const VerifyProblemSchema = z.strictObject({
  class: z.enum(VERIFY_PROBLEM_CLASSES),
  /** The repository key it is about (an object, a backup folder). */
  key: z.string().max(KEY_MAX),
  backupId: BackupIdSchema.nullable(),
  detail: z.string().max(DETAIL_MAX),
});
export type VerifyProblem = z.infer<typeof VerifyProblemSchema>;

const count = z.number().int().nonnegative();

export const RepoVerifyReportSchema = z.strictObject({
  formatVersion: z.literal(1),
  runKey: z.string().regex(VERIFY_RUN_KEY_PATTERN),
  cluster: z.string().regex(CLUSTER_NAME_PATTERN),
  repository: z.string().max(KEY_MAX),
  startedAt: z.string().max(40),
  finishedAt: z.string().max(40),
  /** No problem found and every backup checked. */
  clean: z.boolean(),
  severity: z.enum(['info', 'warning', 'critical']),
  backupsChecked: count,
  artifactsChecked: count,
  bytesRead: count,
  counts: z.strictObject({ corrupt: count, missing: count, 'unusable-manifest': count, chain: count, orphaned: count }),
  problems: z.array(VerifyProblemSchema).max(100_000),
  /** Backups whose check failed: not known to be good or bad. */
  unverified: z.array(z.strictObject({ backupId: BackupIdSchema, reason: z.string().max(DETAIL_MAX) })).max(100_000),
  /** What was not judged, and why (a staging folder whose run Temporal could not look up, folders still in their grace period, backups deleted meanwhile). */
  notes: z.array(z.string().max(DETAIL_MAX)).max(1000),
  requestedBy: z.string().max(100).nullable(),
  workflow: z.strictObject({ workflowId: z.string().max(1000), runId: z.string().max(200) }),
});
export type RepoVerifyReport = z.infer<typeof RepoVerifyReportSchema>;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function problem(cls: VerifyProblemClass, key: string, backupId: string | null, detail: string): VerifyProblem {
  return { class: cls, key: clip(key, KEY_MAX), backupId, detail: clip(detail, DETAIL_MAX) };
}

/** An artifact that is not there is missing; any other failure of the re-read is corruption. */
export function artifactProblems(backupId: string, artifacts: readonly ArtifactFinding[]): VerifyProblem[] {
  const out: VerifyProblem[] = [];
  for (const a of artifacts) {
    if (a.missing) out.push(problem('missing', a.key, backupId, `${a.name}: listed in the manifest, not in the repository`));
    // The key leads the problem already: a message that starts with it again (decryption's do) says it once.
    else if (a.problems.length > 0) out.push(problem('corrupt', a.key, backupId, a.problems.map((p) => (p.startsWith(`${a.key}: `) ? p.slice(a.key.length + 2) : p)).join('; ')));
  }
  return out;
}

/** A backup whose parent is not a usable backup of the catalog cannot be restored, nor can anything built on it. */
export function chainProblems(listing: Pick<VerifyListing, 'backups' | 'unusable'>): VerifyProblem[] {
  const present = new Set(listing.backups.map((b) => b.id));
  const out: VerifyProblem[] = [];
  for (const b of listing.backups) {
    if (b.parentId === null || present.has(b.parentId)) continue;
    const damaged = listing.unusable.some((u) => u.key.endsWith(`/${b.parentId}`));
    const why = damaged ? `its parent ${b.parentId} has a manifest that cannot be used` : `its parent ${b.parentId} is not in the repository`;
    out.push(problem('chain', b.key, b.id, `${why}: ${b.id} and the backups built on it cannot be restored`));
  }
  return out;
}

/** Which candidates are orphans now; the rest are noted (too young to judge, owner unknown). */
export function orphanProblems(candidates: readonly OrphanCandidate[], now: Date, graceMs: number = ORPHAN_GRACE_MS): { problems: VerifyProblem[]; notes: string[] } {
  const problems: VerifyProblem[] = [];
  const notes: string[] = [];
  let young = 0;
  const hours = Math.round(graceMs / 3_600_000);
  const old = (newest: string | null): boolean | null => {
    if (newest === null) return null; // nothing in it (gone meanwhile): nothing to report
    const at = Date.parse(newest);
    return Number.isNaN(at) ? true : now.getTime() - at > graceMs;
  };
  for (const c of candidates) {
    switch (c.kind) {
      case 'unlisted-object':
        problems.push(problem('orphaned', c.key, c.backupId, `in the folder of backup ${c.backupId}, not listed in its manifest`));
        break;
      case 'stray':
        // A file being written (a temporary name before its rename) is young: judged next time.
        if (c.newest !== null && old(c.newest) === false) young += 1;
        else problems.push(problem('orphaned', c.key, null, 'not a name dbops gives anything in this folder'));
        break;
      case 'unpublished':
      case 'trash': {
        const o = old(c.newest);
        if (o === false) young += 1;
        else if (o === true) {
          problems.push(
            problem(
              'orphaned',
              c.key,
              c.backupId,
              c.kind === 'trash'
                ? `remains of deleted backup ${c.backupId}, last written ${c.newest}`
                : `a backup folder without a manifest (an interrupted move or a lost manifest), last written ${c.newest}`,
            ),
          );
        }
        break;
      }
      case 'staging': {
        const o = old(c.newest);
        if (o === null) break;
        if (o === false) {
          young += 1;
          break;
        }
        if (c.owner === null) problems.push(problem('orphaned', c.key, c.backupId, `a staging folder of no known run, last written ${c.newest}`));
        else if (c.ownerRunning === false) problems.push(problem('orphaned', c.key, c.backupId, `a staging folder whose run ${c.owner.workflowId} has ended, last written ${c.newest}`));
        else if (c.ownerRunning === null) notes.push(`${c.key}: Temporal could not say whether its run ${c.owner.workflowId} still runs; not judged`);
        break;
      }
    }
  }
  if (young > 0) notes.push(`${young} object(s) or folder(s) outside the catalog written in the last ${hours} h not judged: a run may still be writing them`);
  return { problems, notes };
}

export interface VerifyRun {
  runKey: string;
  startedAt: Date;
  finishedAt: Date;
  requestedBy: string | null;
  workflow: { workflowId: string; runId: string };
}

/** The report of one cluster: every problem found, classified, with its severity. */
export function buildVerifyReport(
  found: { listing: VerifyListing; findings: readonly BackupFinding[]; orphans: readonly OrphanCandidate[]; archive?: ArchiveFinding | null },
  run: VerifyRun,
  graceMs: number = ORPHAN_GRACE_MS,
): RepoVerifyReport {
  const { listing, findings } = found;
  const problems: VerifyProblem[] = listing.unusable.map((u) => problem('unusable-manifest', u.key, idOfKey(u.key), u.problem));
  const notes: string[] = [];
  const unverified: RepoVerifyReport['unverified'] = [];
  let backupsChecked = 0;
  let artifactsChecked = 0;
  let bytesRead = 0;
  let gone = 0;
  for (const f of findings) {
    if (f.outcome === 'checked') {
      backupsChecked += 1;
      artifactsChecked += f.artifacts.length;
      bytesRead += f.artifacts.reduce((n, a) => n + a.bytesRead, 0);
      problems.push(...artifactProblems(f.id, f.artifacts));
    } else if (f.outcome === 'unusable') {
      problems.push(problem('unusable-manifest', f.key, f.id, f.problem));
    } else if (f.outcome === 'unverified') {
      unverified.push({ backupId: f.id, reason: clip(f.reason, DETAIL_MAX) });
    } else {
      gone += 1;
    }
  }
  if (gone > 0) notes.push(`${gone} backup(s) left the catalog while the run went on (retention) and were not checked`);
  const left = new Set(findings.filter((f) => f.outcome === 'gone').map((f) => f.id));
  problems.push(...chainProblems(listing).filter((p) => p.backupId === null || !left.has(p.backupId)));
  if (found.archive && found.archive.timelines > 0) {
    problems.push(...found.archive.problems.map((p) => problem(p.class, p.key, null, p.detail)));
    notes.push(`binlog archive: ${found.archive.segments} segment(s) in ${found.archive.timelines} timeline(s) re-read (${found.archive.bytesRead} bytes)`);
  }
  const orphans = orphanProblems(found.orphans, run.finishedAt, graceMs);
  problems.push(...orphans.problems);
  notes.push(...orphans.notes);

  const counts = { corrupt: 0, missing: 0, 'unusable-manifest': 0, chain: 0, orphaned: 0 };
  for (const p of problems) counts[p.class] += 1;
  const serious = problems.some((p) => SERIOUS.has(p.class));
  const clean = problems.length === 0 && unverified.length === 0;
  return {
    formatVersion: 1,
    runKey: run.runKey,
    cluster: listing.cluster,
    repository: clip(listing.repository, KEY_MAX),
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt.toISOString(),
    clean,
    severity: serious ? 'critical' : clean ? 'info' : 'warning',
    backupsChecked,
    artifactsChecked,
    bytesRead,
    counts,
    problems,
    unverified,
    notes,
    requestedBy: run.requestedBy,
    workflow: run.workflow,
  };
}

/** The backup id a backup folder's key ends with, if it does. */
function idOfKey(key: string): string | null {
  const last = key.slice(key.lastIndexOf('/') + 1);
  return BackupIdSchema.safeParse(last).success ? last : null;
}

/** "2 corrupt, 1 missing, 1 orphaned" (classes found only). */
export function countsLine(counts: RepoVerifyReport['counts']): string {
  return VERIFY_PROBLEM_CLASSES.filter((c) => counts[c] > 0)
    .map((c) => `${counts[c]} ${c.replace('-', ' ')}`)
    .join(', ');
}

/** One line per problem, as a person reads them: class, key, what is wrong. */
export function problemLine(p: VerifyProblem): string {
  return `${p.class}: ${p.key}: ${p.detail}`;
}

/** What the report says in one sentence (the run's summary, the alert's first part). */
export function verifySummary(r: RepoVerifyReport): string {
  const checked = `${r.backupsChecked} backup(s), ${r.artifactsChecked} artifact(s), ${formatBytes(r.bytesRead)} re-read`;
  if (r.clean) return `repository verify of ${r.cluster}: clean; ${checked}`;
  const found = [countsLine(r.counts), r.unverified.length > 0 ? `${r.unverified.length} backup(s) not verified` : ''].filter((x) => x !== '').join(', ');
  return `repository verify of ${r.cluster}: ${r.severity === 'critical' ? 'BACKUPS CANNOT BE RESTORED AS THEY ARE' : 'problems found'}: ${found}; ${checked}`;
}

/** The alert for a finished report (notify activity input without the cluster's validation). */
export function verifyAlert(r: RepoVerifyReport, reportKey: string): { severity: RepoVerifyReport['severity']; event: string; cluster: string; message: string } {
  const shown = 5;
  const lines = [
    ...r.problems.slice(0, shown).map(problemLine),
    ...r.unverified.slice(0, Math.max(0, shown - r.problems.length)).map((u) => `not verified: ${u.backupId}: ${u.reason}`),
  ];
  const more = r.problems.length + r.unverified.length - lines.length;
  const message = [
    `${verifySummary(r)} in ${r.repository}`,
    ...lines,
    ...(more > 0 ? [`… and ${more} more`] : []),
    `report: ${reportKey}`,
  ].join('\n');
  return { severity: r.severity, event: VERIFY_EVENT, cluster: r.cluster, message: clip(message, 9000) };
}

/** What re-reading the continuous binlog archive found (see archiveHoles for the layout part). */
export interface ArchiveFinding {
  timelines: number;
  segments: number;
  bytesRead: number;
  problems: Array<{ class: 'corrupt' | 'missing' | 'chain'; key: string; detail: string }>;
}

/**
 * Holes in an archived timeline's layout: a file whose segments do not run on from byte 0,
 * or a later file after one that was never closed. (The segments' bytes are re-read apart.)
 */
export function archiveHoles(files: ReadonlyArray<{ file: string; key: string; segments: ReadonlyArray<{ start: number; end: number; closed: boolean }> }>): ArchiveFinding['problems'] {
  const out: ArchiveFinding['problems'] = [];
  files.forEach((f, i) => {
    const sorted = [...f.segments].sort((a, b) => a.start - b.start);
    let at = 0;
    for (const s of sorted) {
      if (s.start !== at) out.push({ class: 'chain', key: f.key, detail: `${f.file}: bytes [${at}, ${s.start}) are not archived; a restore stops before them` });
      at = Math.max(at, s.end);
    }
    const closed = sorted[sorted.length - 1]?.closed ?? false;
    if (!closed && i < files.length - 1) out.push({ class: 'chain', key: f.key, detail: `${f.file} was never archived to its end, yet later files were: a restore stops in it` });
  });
  return out;
}
