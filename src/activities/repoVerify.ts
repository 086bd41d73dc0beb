/**
 * Repository verification activities: which clusters, which backups of one, re-read one
 * backup (every artifact, full depth, heartbeating as it reads), find what no manifest
 * accounts for, store the report. They take cluster names and backup ids only; the
 * repository is the worker's own. Each only reads, but the report, and is safe to retry.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { totalStoredBytes } from '../domain/manifest';
import { formatBytes } from '../domain/naming';
import { archiveHoles, RepoVerifyReportSchema, type ArchiveFinding, type BackupFinding, type OrphanCandidate, type VerifyListing } from '../domain/repoVerify';
import { BinlogArchive } from '../repository/binlogArchive';
import type { Segment } from '../domain/binlogArchive';
import { layout } from '../repository/layout';
import { orphanCandidates } from '../repository/orphans';
import { accept, clusterOf } from './context';
import type { ActivityDeps } from './deps';
import { BackupIdSchema, cluster } from './schemas';

export interface WorkflowRun {
  workflowId: string;
  runId: string;
}

export interface RepoVerifyOptions {
  /** For each run, whether it still runs; null where Temporal cannot say. */
  runsRunning?: (runs: WorkflowRun[]) => Promise<Array<boolean | null>>;
}

/** Heartbeats when running as an activity; nothing when called directly (tests, tools). */
function heartbeater(): (details: { text: string }) => void {
  try {
    const ctx = Context.current();
    return (details) => ctx.heartbeat(details);
  } catch {
    return () => undefined;
  }
}

export function createRepoVerifyActivities(deps: ActivityDeps, options: RepoVerifyOptions = {}) {
  const { config, logger, repository, metrics, temporal } = deps;
  const catalog = repository.catalog;

  /** One short-lived connection for all of a cluster's staging owners. */
  const runsRunning =
    options.runsRunning ??
    (async (runs: WorkflowRun[]): Promise<Array<boolean | null>> => {
      if (runs.length === 0) return [];
      try {
        return await temporal.withClient(async (client) => {
          const answers: Array<boolean | null> = [];
          for (const run of runs) {
            try {
              answers.push((await client.workflow.getHandle(run.workflowId, run.runId).describe()).status.name === 'RUNNING');
            } catch (error) {
              answers.push(error instanceof WorkflowNotFoundError ? false : null);
            }
          }
          return answers;
        });
      } catch {
        return runs.map(() => null);
      }
    });

  return {
    /** The clusters this worker is configured with: a run without a cluster verifies them all. */
    async listVerifyClusters(raw: Record<string, never>): Promise<{ clusters: string[] }> {
      accept(z.strictObject({}), raw, 'listVerifyClusters');
      return { clusters: config.clusters.map((c) => c.name) };
    },

    /** The published backups of a cluster, and the folders whose manifest cannot be believed. */
    async listBackupsToVerify(raw: { cluster: string }): Promise<VerifyListing> {
      const c = clusterOf(config, accept(z.strictObject({ cluster }), raw, 'listBackupsToVerify').cluster);
      const { backups, unusable } = await catalog.scan(c.name);
      return {
        cluster: c.name,
        repository: repository.storage.description,
        backups: backups.map((b) => ({
          id: b.manifest.id,
          type: b.manifest.type,
          parentId: b.manifest.parentId,
          key: b.relativePath,
          artifacts: b.manifest.artifacts.length,
          bytes: totalStoredBytes(b.manifest),
        })),
        unusable,
      };
    },

    /**
     * Re-reads every artifact of one backup: stored size and sha256, decryption where the
     * repository is sealed, decompression and the raw size and sha256. A backup that left
     * the catalog meanwhile (retention) is `gone`, not damaged.
     */
    async verifyBackup(raw: { cluster: string; backupId: string }): Promise<BackupFinding> {
      const input = accept(z.strictObject({ cluster, backupId: BackupIdSchema }), raw, 'verifyBackup');
      const c = clusterOf(config, input.cluster);
      const id = input.backupId;
      const found = await catalog.locate(c.name, id);
      if (!found) return { id, outcome: 'gone' };
      if ('unusable' in found) return { id, outcome: 'unusable', key: found.unusable.key, problem: found.unusable.problem };
      const beat = heartbeater();
      beat({ text: `${id}: ${found.backup.manifest.artifacts.length} artifact(s), ${formatBytes(totalStoredBytes(found.backup.manifest))}` });
      const progress = (bytes: number, artifact: string) => beat({ text: `${id}: ${artifact}: ${formatBytes(bytes)} re-read` });
      const check = await catalog.checkBackup(found.backup, 'full', progress);
      const damaged = new Set(check.artifacts.filter((a) => !a.ok && !a.missing).map((a) => a.name));
      if (damaged.size > 0) {
        // A connection that breaks mid-read looks like a stream that does not decompress;
        // damage reads the same twice, so only what fails again is reported.
        const again = new Map((await catalog.checkBackup(found.backup, 'full', progress, damaged)).artifacts.map((a) => [a.name, a]));
        check.artifacts = check.artifacts.map((a) => again.get(a.name) ?? a);
      }
      const failed = check.artifacts.filter((a) => !a.ok);
      if (failed.length > 0) {
        // Retention moves a backup out of the catalog before deleting its files: not damage.
        if ((await catalog.locate(c.name, id)) === null) return { id, outcome: 'gone' };
        const corrupt = failed.filter((a) => !a.missing).length;
        if (corrupt > 0) metrics.checksumMismatch.labels(c.name).inc(corrupt);
        logger.warn({ cluster: c.name, backupId: id, problems: failed.flatMap((a) => a.problems) }, 'repository verify: backup damaged');
      }
      return {
        id,
        outcome: 'checked',
        key: found.backup.relativePath,
        artifacts: check.artifacts.map((a) => ({ name: a.name, key: a.key, bytesRead: a.bytesRead, missing: a.missing, problems: a.problems })),
      };
    },

    /** Every archived binlog segment re-read against its record, and the archive's layout checked for holes. */
    async verifyBinlogArchive(raw: { cluster: string }): Promise<ArchiveFinding> {
      const c = clusterOf(config, accept(z.strictObject({ cluster }), raw, 'verifyBinlogArchive').cluster);
      const archive = new BinlogArchive(repository.storage, c.name);
      const beat = heartbeater();
      const finding: ArchiveFinding = { timelines: 0, segments: 0, bytesRead: 0, problems: [] };
      for (const timeline of await archive.timelines()) {
        finding.timelines += 1;
        const files: Array<{ file: string; key: string; segments: Segment[] }> = [];
        for (const file of await archive.files(timeline.timeline)) {
          const segments = await archive.segments(timeline.timeline, file);
          const dir = layout.archiveFileDir(c.name, timeline.timeline, file);
          files.push({ file, key: dir, segments });
          for (const s of segments) {
            const key = layout.artifact(dir, s.artifact.name);
            const r = await catalog.reread(key, s.artifact, 'full');
            finding.segments += 1;
            finding.bytesRead += r.bytesRead;
            if (!r.ok) finding.problems.push({ class: r.missing ? 'missing' : 'corrupt', key, detail: r.problems.join('; ') });
            beat({ text: `binlog archive ${timeline.timeline}: ${finding.segments} segment(s) re-read, ${formatBytes(finding.bytesRead)}` });
          }
        }
        finding.problems.push(...archiveHoles(files));
      }
      if (finding.problems.length > 0) logger.warn({ cluster: c.name, problems: finding.problems }, 'repository verify: binlog archive damaged');
      return finding;
    },

    /** What the catalog's folders hold that no manifest accounts for; staging owners looked up in Temporal. */
    async findOrphans(raw: { cluster: string }): Promise<{ candidates: OrphanCandidate[] }> {
      const c = clusterOf(config, accept(z.strictObject({ cluster }), raw, 'findOrphans').cluster);
      const candidates = await orphanCandidates(catalog, c.name);
      const owned = candidates.flatMap((x) => (x.kind === 'staging' && x.owner !== null ? [x] : []));
      const answers = await runsRunning(owned.map((x) => x.owner as WorkflowRun));
      owned.forEach((x, i) => (x.ownerRunning = answers[i] ?? null));
      return { candidates };
    },

    async storeVerifyReport(raw: { report: unknown }): Promise<{ key: string }> {
      const input = accept(z.strictObject({ report: RepoVerifyReportSchema }), raw, 'storeVerifyReport');
      clusterOf(config, input.report.cluster);
      return { key: await catalog.storeVerifyReport(input.report) };
    },
  };
}

export type RepoVerifyActivities = ReturnType<typeof createRepoVerifyActivities>;
