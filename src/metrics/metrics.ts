/**
 * The worker's Prometheus metrics. Two kinds:
 * - events counted as they happen in this process (runs, failures, checksum mismatches,
 *   archived rows, retention deletions): counters, exported at 0 for every cluster from
 *   the start so that increase() sees the first event;
 * - state read from the repository at scrape time (last success per type, its duration,
 *   size and compression, storage used, the latest drill's RTO and RPO, what the latest
 *   repository verification found): right after a
 *   worker restart, and the same whichever worker took the backup.
 * The names are the contract with monitoring/prometheus/dbops-rules.yml and the Grafana
 * dashboard (test/unit/dashboard.test.ts checks both). The worker makes one and hands it to
 * the activities (which count into it) and to the /metrics server (which serves it).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Repository } from '../repository/catalog';
import type { DrillReport } from '../domain/drill';
import { VERIFY_PROBLEM_CLASSES, type RepoVerifyReport } from '../domain/repoVerify';
import { BACKUP_TYPES, spaceSaving, totalStoredBytes, type BackupType, type Manifest } from '../domain/manifest';

/** How a backup run ended; `skipped`: refused because another operation held the cluster (not a failure). */
export const BACKUP_OUTCOMES = ['success', 'failure', 'skipped'] as const;
export type BackupOutcome = (typeof BACKUP_OUTCOMES)[number];

export const DURATION_BUCKETS = [30, 60, 120, 300, 600, 1200, 1800, 3600];

export class DbopsMetrics {
  readonly registry = new Registry();
  private readonly r = [this.registry];
  readonly backupRuns = new Counter({ name: 'dbops_backup_runs_total', help: 'Backup runs by outcome', labelNames: ['cluster', 'type', 'outcome'], registers: this.r });
  readonly backupDuration = new Histogram({ name: 'dbops_backup_duration_seconds', help: 'Duration of successful backups', labelNames: ['cluster', 'type'], buckets: DURATION_BUCKETS, registers: this.r });
  readonly lastDuration = new Gauge({ name: 'dbops_backup_last_duration_seconds', help: 'Duration of the newest verified backup', labelNames: ['cluster', 'type'], registers: this.r });
  readonly lastSuccess = new Gauge({ name: 'dbops_backup_last_success_timestamp_seconds', help: 'When the newest verified backup finished (unix seconds)', labelNames: ['cluster', 'type'], registers: this.r });
  readonly size = new Gauge({ name: 'dbops_backup_size_bytes', help: 'Stored bytes of the newest verified backup', labelNames: ['cluster', 'type'], registers: this.r });
  readonly saving = new Gauge({ name: 'dbops_backup_compression_saving_ratio', help: 'Space saved by compression in the newest verified backup (0..1)', labelNames: ['cluster', 'type'], registers: this.r });
  readonly checksumMismatch = new Counter({ name: 'dbops_backup_checksum_mismatch_total', help: 'Artifacts that failed verification', labelNames: ['cluster'], registers: this.r });
  readonly repoUsed = new Gauge({ name: 'dbops_repository_used_bytes', help: 'Stored bytes of all verified backups of the cluster', labelNames: ['cluster'], registers: this.r });
  readonly repoLimit = new Gauge({ name: 'dbops_repository_limit_bytes', help: 'retention.maxBytes (absent when unlimited)', labelNames: ['cluster'], registers: this.r });
  readonly drillRto = new Gauge({ name: 'dbops_drill_rto_seconds', help: 'RTO measured by the latest drill', labelNames: ['cluster'], registers: this.r });
  readonly drillRpo = new Gauge({ name: 'dbops_drill_rpo_seconds', help: 'RPO measured by the latest drill', labelNames: ['cluster'], registers: this.r });
  readonly drillLastSuccess = new Gauge({ name: 'dbops_drill_last_success_timestamp_seconds', help: 'When the latest passed drill finished', labelNames: ['cluster'], registers: this.r });
  readonly archivedRows = new Counter({ name: 'dbops_archive_rows_total', help: 'Rows moved by archive jobs', labelNames: ['cluster', 'database', 'table'], registers: this.r });
  readonly retentionDeleted = new Counter({ name: 'dbops_retention_deleted_total', help: 'Backups deleted by retention', labelNames: ['cluster', 'type'], registers: this.r });
  readonly copyLag = new Gauge({ name: 'dbops_copy_lag_seconds', help: 'How long the oldest backup not yet in a copy repository has waited (0: caught up)', labelNames: ['cluster', 'repository'], registers: this.r });
  readonly verifyLast = new Gauge({ name: 'dbops_repository_verify_last_timestamp_seconds', help: 'When the latest repository verification of the cluster finished (unix seconds)', labelNames: ['cluster'], registers: this.r });
  readonly verifyProblems = new Gauge({
    name: 'dbops_repository_verify_problems',
    help: 'Problems the latest repository verification found, by class (unverified: backups whose check failed)',
    labelNames: ['cluster', 'class'],
    registers: this.r,
  });
  readonly binlogArchiveCovered = new Gauge({
    name: 'dbops_binlog_archive_covered_timestamp_seconds',
    help: 'Every transaction the server committed before this time is in the binlog archive (unix seconds); its age is the RPO',
    labelNames: ['cluster'],
    registers: this.r,
  });
  readonly binlogArchiveTarget = new Gauge({ name: 'dbops_binlog_archive_rpo_target_seconds', help: 'clusters[].binlogArchive.rpoTarget of clusters that archive binlogs', labelNames: ['cluster'], registers: this.r });
  readonly binlogArchiveCritical = new Gauge({ name: 'dbops_binlog_archive_rpo_critical_seconds', help: 'clusters[].binlogArchive.rpoCritical of clusters that archive binlogs', labelNames: ['cluster'], registers: this.r });
  readonly queryKills = new Counter({
    name: 'dbops_query_kills_total',
    help: 'Statements the slow-query killer stopped, by how (query, connection; dry-run: would have)',
    labelNames: ['cluster', 'action'],
    registers: this.r,
  });
  readonly approvalsWaiting = new Gauge({ name: 'dbops_approvals_waiting', help: 'Runs waiting for a person', labelNames: ['cluster'], registers: this.r });

  /** Series at 0 from the start, so the first failure is an increase. */
  initialise(clusters: readonly string[]): void {
    for (const cluster of clusters) {
      for (const type of BACKUP_TYPES) for (const outcome of BACKUP_OUTCOMES) this.backupRuns.labels(cluster, type, outcome).inc(0);
      this.checksumMismatch.labels(cluster).inc(0);
      for (const type of BACKUP_TYPES) this.retentionDeleted.labels(cluster, type).inc(0);
      this.approvalsWaiting.labels(cluster).set(0);
      for (const action of ['query', 'connection', 'dry-run']) this.queryKills.labels(cluster, action).inc(0);
    }
  }

  backupFinished(cluster: string, type: BackupType, outcome: BackupOutcome, seconds: number | null): void {
    this.backupRuns.labels(cluster, type, outcome).inc();
    if (outcome === 'success' && seconds !== null) this.backupDuration.labels(cluster, type).observe(seconds);
  }

  /** Gauges from the catalog: what is in the repository now. */
  fromCatalog(cluster: string, manifests: readonly Manifest[], limitBytes: number | undefined): void {
    let used = 0;
    const newest = new Map<BackupType, Manifest>();
    for (const m of manifests) {
      used += totalStoredBytes(m);
      const seen = newest.get(m.type);
      if (!seen || m.finishedAt > seen.finishedAt) newest.set(m.type, m);
    }
    for (const [type, m] of newest) {
      this.lastSuccess.labels(cluster, type).set(Date.parse(m.finishedAt) / 1000);
      this.lastDuration.labels(cluster, type).set(m.durationMs / 1000);
      this.size.labels(cluster, type).set(totalStoredBytes(m));
      this.saving.labels(cluster, type).set(spaceSaving(m));
    }
    this.repoUsed.labels(cluster).set(used);
    if (limitBytes !== undefined) this.repoLimit.labels(cluster).set(limitBytes);
  }

  /** What the latest repository verification found; nothing until the cluster has been verified once. */
  fromVerify(cluster: string, report: Pick<RepoVerifyReport, 'finishedAt' | 'counts' | 'unverified'> | null): void {
    if (!report) return;
    this.verifyLast.labels(cluster).set(Date.parse(report.finishedAt) / 1000);
    for (const c of VERIFY_PROBLEM_CLASSES) this.verifyProblems.labels(cluster, c).set(report.counts[c]);
    this.verifyProblems.labels(cluster, 'unverified').set(report.unverified.length);
  }

  /** The archive's coverage as the repository records it (the archiving worker may be another process), and its targets. */
  fromBinlogArchive(cluster: string, coveredUntil: string | null, targets: { rpoSeconds: number; criticalSeconds: number }): void {
    this.binlogArchiveTarget.labels(cluster).set(targets.rpoSeconds);
    this.binlogArchiveCritical.labels(cluster).set(targets.criticalSeconds);
    if (coveredUntil) this.binlogArchiveCovered.labels(cluster).set(Date.parse(coveredUntil) / 1000);
  }

  fromDrill(cluster: string, report: { passed: boolean; finishedAt?: string; rto: { seconds: number }; rpo: { seconds: number | null } } | null, lastPassedAt: string | null): void {
    if (report) {
      this.drillRto.labels(cluster).set(report.rto.seconds);
      if (report.rpo.seconds !== null) this.drillRpo.labels(cluster).set(report.rpo.seconds);
    }
    if (lastPassedAt) this.drillLastSuccess.labels(cluster).set(Date.parse(lastPassedAt) / 1000);
  }
}

/** The latest drill report of a cluster and when the latest passed one ended. */
export async function latestDrills(repository: Repository, cluster: string): Promise<{ latest: DrillReport | null; lastPassedAt: string | null }> {
  const reports = await repository.drillReports(cluster);
  const passed = reports.filter((r) => r.passed);
  return { latest: reports[reports.length - 1] ?? null, lastPassedAt: passed[passed.length - 1]?.finishedAt ?? null };
}
