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
import type { ServerHealth } from '../domain/health';
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
  readonly serverUp = new Gauge({ name: 'dbops_mysql_up', help: 'Whether the worker could read the server at the last scrape (1) or not (0)', labelNames: ['cluster'], registers: this.r });
  readonly connections = new Gauge({ name: 'dbops_mysql_connections', help: 'Connections open on the server (Threads_connected)', labelNames: ['cluster'], registers: this.r });
  readonly maxConnections = new Gauge({ name: 'dbops_mysql_max_connections', help: 'The server\'s max_connections', labelNames: ['cluster'], registers: this.r });
  readonly sleeping = new Gauge({ name: 'dbops_mysql_connections_sleeping', help: 'Connections idle in Sleep (a leak shows here first)', labelNames: ['cluster'], registers: this.r });
  readonly running = new Gauge({ name: 'dbops_mysql_threads_running', help: 'Statements running now (Threads_running)', labelNames: ['cluster'], registers: this.r });
  readonly abortedConnects = new Gauge({ name: 'dbops_mysql_aborted_connects', help: 'The server\'s Aborted_connects since it started (failed logins, handshake timeouts); use increase()', labelNames: ['cluster'], registers: this.r });
  readonly replicaIo = new Gauge({ name: 'dbops_replica_io_running', help: 'A replica\'s IO thread runs (1) or not (0); absent on a server that is no replica', labelNames: ['cluster', 'source'], registers: this.r });
  readonly replicaSql = new Gauge({ name: 'dbops_replica_sql_running', help: 'A replica\'s SQL thread runs (1) or not (0)', labelNames: ['cluster', 'source'], registers: this.r });
  readonly replicaLag = new Gauge({ name: 'dbops_replica_lag_seconds', help: 'Seconds the replica is behind its source (absent while it cannot say)', labelNames: ['cluster', 'source'], registers: this.r });
  readonly replicaErrno = new Gauge({ name: 'dbops_replica_last_error_number', help: 'The replica\'s last IO or SQL error number (0: none)', labelNames: ['cluster', 'source'], registers: this.r });
  /** The source each cluster's replica series were last set with (a changed source drops the old series). */
  private readonly replicaSources = new Map<string, string>();
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

  /** The server as read at this scrape; null when it could not be read (its other series are dropped, not left stale). */
  fromHealth(cluster: string, health: ServerHealth | null): void {
    this.serverUp.labels(cluster).set(health ? 1 : 0);
    const gauges = [this.connections, this.maxConnections, this.sleeping, this.running, this.abortedConnects];
    const replicaGauges = [this.replicaIo, this.replicaSql, this.replicaLag, this.replicaErrno];
    const before = this.replicaSources.get(cluster);
    if (before !== undefined) for (const g of replicaGauges) g.remove(cluster, before);
    this.replicaSources.delete(cluster);
    if (!health) {
      for (const g of gauges) g.remove(cluster);
      return;
    }
    this.connections.labels(cluster).set(health.connections);
    this.maxConnections.labels(cluster).set(health.maxConnections);
    this.sleeping.labels(cluster).set(health.sleeping);
    this.running.labels(cluster).set(health.running);
    this.abortedConnects.labels(cluster).set(health.abortedConnects);
    const r = health.replica;
    if (r) {
      this.replicaSources.set(cluster, r.source);
      this.replicaIo.labels(cluster, r.source).set(r.ioRunning ? 1 : 0);
      this.replicaSql.labels(cluster, r.source).set(r.sqlRunning ? 1 : 0);
      if (r.lagSeconds !== null) this.replicaLag.labels(cluster, r.source).set(r.lagSeconds);
      this.replicaErrno.labels(cluster, r.source).set(r.lastErrno);
    }
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
