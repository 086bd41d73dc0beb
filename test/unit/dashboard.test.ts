/**
 * The Grafana dashboard and the alert rules only query metrics the worker exposes (the
 * dbops_* list below) or the Temporal SDK's own (temporal_*). Also checks the
 * dashboard's import contract: a ${DS_PROMETHEUS} input and a cluster variable, and, with
 * promtool, that every panel query is valid PromQL.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');
const DASHBOARD = path.join(ROOT, 'monitoring', 'grafana', 'dbops-dashboard.json');
const RULES = path.join(ROOT, 'monitoring', 'prometheus', 'dbops-rules.yml');

/** What the worker exposes (name -> Prometheus type). */
export const DBOPS_METRICS: Readonly<Record<string, 'counter' | 'gauge' | 'histogram'>> = {
  dbops_backup_runs_total: 'counter',
  dbops_backup_duration_seconds: 'histogram',
  dbops_backup_last_duration_seconds: 'gauge',
  dbops_backup_last_success_timestamp_seconds: 'gauge',
  dbops_backup_size_bytes: 'gauge',
  dbops_backup_compression_saving_ratio: 'gauge',
  dbops_backup_checksum_mismatch_total: 'counter',
  dbops_repository_used_bytes: 'gauge',
  dbops_repository_limit_bytes: 'gauge',
  dbops_drill_rto_seconds: 'gauge',
  dbops_drill_rpo_seconds: 'gauge',
  dbops_drill_last_success_timestamp_seconds: 'gauge',
  dbops_archive_rows_total: 'counter',
  dbops_retention_deleted_total: 'counter',
  dbops_approvals_waiting: 'gauge',
  dbops_repository_verify_last_timestamp_seconds: 'gauge',
  dbops_repository_verify_problems: 'gauge',
  dbops_binlog_archive_covered_timestamp_seconds: 'gauge',
  dbops_binlog_archive_rpo_target_seconds: 'gauge',
  dbops_binlog_archive_rpo_critical_seconds: 'gauge',
  dbops_query_kills_total: 'counter',
  dbops_mysql_up: 'gauge',
  dbops_mysql_connections: 'gauge',
  dbops_mysql_max_connections: 'gauge',
  dbops_mysql_connections_sleeping: 'gauge',
  dbops_mysql_threads_running: 'gauge',
  dbops_mysql_aborted_connects: 'gauge',
  dbops_replica_io_running: 'gauge',
  dbops_replica_sql_running: 'gauge',
  dbops_replica_lag_seconds: 'gauge',
  dbops_replica_last_error_number: 'gauge',
};

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan', 'atan2']);

/** The metric names a PromQL expression selects (functions, labels, keywords and literals left out). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const before = bare[(m.index ?? 0) - 1] ?? ' ';
    const after = bare.slice((m.index ?? 0) + m[0].length);
    if (/[0-9.$]/.test(before)) continue; // 1e12, 4h, $variables
    if (/^\s*\(/.test(after)) continue; // a function call
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

function known(name: string): boolean {
  if (name.startsWith('temporal_')) return true;
  if (DBOPS_METRICS[name]) return true;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
  return histogram?.[1] !== undefined && DBOPS_METRICS[histogram[1]] === 'histogram';
}

interface Target {
  expr: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  schemaVersion: number;
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; definition?: string; query?: unknown; datasource?: { uid?: string } }> };
}
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== 'row');
const targets = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));
const rules = ((parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups ?? []).flatMap((g) => g.rules);

describe('metricNames', () => {
  test('finds selectors, not functions, labels, keywords, variables or literals', () => {
    expect(metricNames('sum by (cluster, le) (rate(dbops_backup_duration_seconds_bucket{cluster=~"$cluster"}[$__rate_interval]))')).toEqual(['dbops_backup_duration_seconds_bucket']);
    expect(metricNames('time() - max by (cluster) (x_seconds{type="full"}) > 26 * 3600 and on (cluster) y offset 1h')).toEqual(['x_seconds', 'y']);
    expect(metricNames('1e12 + absent(a) unless ignoring(job) b')).toEqual(['a', 'b']);
  });
});

describe('Grafana dashboard', () => {
  test('imports with a Prometheus data source input and a cluster variable', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const cluster = dashboard.templating.list.find((v) => v.name === 'cluster');
    expect(cluster).toMatchObject({ type: 'query', definition: 'label_values(dbops_backup_runs_total, cluster)', datasource: { uid: '${DS_PROMETHEUS}' } });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels) {
      expect([p.title, p.datasource?.uid]).toEqual([p.title, '${DS_PROMETHEUS}']);
      expect([p.title, (p.targets ?? []).length > 0]).toEqual([p.title, true]);
      for (const t of p.targets ?? []) expect([p.title, t.datasource?.uid]).toEqual([p.title, '${DS_PROMETHEUS}']);
    }
  });

  test('every panel query references known metrics only; dbops metrics are filtered by $cluster', () => {
    for (const t of targets) {
      const names = metricNames(t.expr);
      expect([t.panel, t.expr, names.length > 0]).toEqual([t.panel, t.expr, true]);
      expect([t.panel, names.filter((n) => !known(n))]).toEqual([t.panel, []]);
      const unfiltered = [...t.expr.matchAll(/\b(dbops_[a-z_]+)(\{[^}]*\})?/g)].filter((m) => !/cluster=~"\$cluster"/.test(m[2] ?? '')).map((m) => m[1]);
      expect([t.panel, unfiltered]).toEqual([t.panel, []]);
    }
  });

  test('shows every metric the worker exposes, and some of the Temporal SDK', () => {
    const used = new Set(targets.flatMap((t) => metricNames(t.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(Object.keys(DBOPS_METRICS).filter((m) => !used.has(m))).toEqual([]);
    expect([...used].filter((m) => m.startsWith('temporal_')).length).toBeGreaterThanOrEqual(2);
  });

  const promtoolFound = ((): boolean => {
    try {
      execFileSync(process.env.PROMTOOL ?? 'promtool', ['--version'], { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  })();
  if (!promtoolFound) console.warn('SKIPPED: promtool not found: the dashboard queries are not parsed as PromQL');
  (promtoolFound ? test : test.skip)('every panel query is valid PromQL (promtool, with the variables filled in)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbops-dashboard-'));
    try {
      const file = path.join(dir, 'queries.yml');
      const recorded = targets.map((t, i) => ({
        record: `dashboard:query_${i}`,
        expr: t.expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$cluster/g, '.*'),
      }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: recorded }] }));
      const out = execFileSync(process.env.PROMTOOL ?? 'promtool', ['check', 'rules', file], { encoding: 'utf8', stdio: 'pipe' });
      expect(out).toMatch(new RegExp(`SUCCESS: ${recorded.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('alert rules', () => {
  test('reference known metrics only, with a severity and what to do', () => {
    expect(rules.length).toBeGreaterThan(0);
    for (const r of rules) {
      const name = r.alert ?? r.record ?? '?';
      const names = metricNames(r.expr);
      expect([name, names.length > 0, names.filter((n) => !known(n))]).toEqual([name, true, []]);
      if (r.alert) {
        expect([name, r.labels?.severity]).toEqual([name, expect.stringMatching(/^(warning|critical)$/)]);
        expect([name, Object.keys(r.annotations ?? {}).sort()]).toEqual([name, ['description', 'runbook', 'summary']]);
      }
    }
  });

  test('the alerts a DBA needs: backup success rate, staleness, storage, drills, approvals', () => {
    const byName = new Map(rules.filter((r) => r.alert).map((r) => [r.alert as string, r]));
    const expected: Array<[string, string, RegExp]> = [
      ['DbopsBackupSuccessRateLow', 'critical', /dbops_backup_runs_total.*< 0\.95/s],
      ['DbopsStorageHigh', 'warning', /dbops_repository_used_bytes.*dbops_repository_limit_bytes.*> 0\.8$/s],
      ['DbopsStorageCritical', 'critical', /dbops_repository_used_bytes.*dbops_repository_limit_bytes.*> 0\.9$/s],
      ['DbopsBackupSlow', 'warning', /dbops_backup_last_duration_seconds.*> 600$/s],
      ['DbopsChecksumMismatch', 'critical', /increase\(dbops_backup_checksum_mismatch_total\[1h\]\).*> 0$/s],
      ['DbopsNoRecentFullBackup', 'critical', /^time\(\) - .*dbops_backup_last_success_timestamp_seconds\{type="full"\}.*> 26 \* 3600$/s],
      ['DbopsDrillRtoAboveTarget', 'warning', /dbops_drill_rto_seconds.*> 4 \* 3600$/s],
      ['DbopsRepositoryVerifyProblems', 'critical', /dbops_repository_verify_problems\{class=~"corrupt\|missing\|unusable-manifest\|chain"\}.*> 0$/s],
      ['DbopsRepositoryVerifyStale', 'warning', /^time\(\) - .*dbops_repository_verify_last_timestamp_seconds.*> 8 \* 86400$/s],
    ];
    for (const [alert, severity, expr] of expected) {
      const rule = byName.get(alert);
      expect([alert, rule?.labels?.severity, rule?.expr.trim()]).toEqual([alert, severity, expect.stringMatching(expr)]);
    }
  });
});
