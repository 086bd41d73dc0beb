/**
 * The Prometheus alert rules are valid (promtool check rules) and behave as their unit tests
 * say: every alert firing and not firing (promtool test rules). scripts/setup.sh installs
 * promtool (Debian package prometheus); $PROMTOOL overrides where it is.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const DIR = path.resolve(__dirname, '..', '..', 'monitoring', 'prometheus');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

function promtoolAvailable(): boolean {
  try {
    execFileSync(PROMTOOL, ['--version'], { stdio: 'pipe' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function promtool(args: string[]): string {
  try {
    return execFileSync(PROMTOOL, args, { cwd: DIR, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}${e.stdout || e.stderr ? '' : e.message}`);
  }
}

const available = promtoolAvailable();
if (!available) {
  // Visible in the test output: the rules are then NOT verified.
  console.warn(`SKIPPED: ${PROMTOOL} not found; install it (apt-get install prometheus, or npm run setup) to check monitoring/prometheus/dbops-rules.yml`);
}
const withPromtool = available ? test : test.skip;

describe('Prometheus alert rules', () => {
  withPromtool('promtool check rules: the rules file is valid', () => {
    expect(promtool(['check', 'rules', 'dbops-rules.yml'])).toMatch(/SUCCESS: \d+ rules found/);
  });

  withPromtool('promtool test rules: every alert fires and stays quiet when it should', () => {
    expect(promtool(['test', 'rules', 'dbops-rules.test.yml'])).toMatch(/SUCCESS/);
  });
});

describe('alert rule unit tests cover every alert', () => {
  type Dict = Record<string, unknown>;
  const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const read = (file: string): Dict => {
    const parsed: unknown = parse(readFileSync(path.join(DIR, file), 'utf8'));
    if (!isDict(parsed)) throw new Error(`${file}: not a mapping`);
    return parsed;
  };

  test('each alert has a firing case and a case where it stays quiet', () => {
    const alerts = list(read('dbops-rules.yml').groups).flatMap((g) => list(isDict(g) ? g.rules : [])).filter(isDict).map((r) => String(r.alert));
    expect(alerts.length).toBeGreaterThan(0);
    const fires = new Set<string>();
    const quiet = new Set<string>();
    for (const t of list(read('dbops-rules.test.yml').tests).filter(isDict)) {
      const clusters = new Set(list(t.input_series).filter(isDict).map((s) => /cluster="([^"]+)"/.exec(String(s.series))?.[1]).filter((c): c is string => c !== undefined));
      for (const c of list(t.alert_rule_test).filter(isDict)) {
        const name = String(c.alertname);
        const expected = list(c.exp_alerts).filter(isDict);
        if (expected.length === 0) quiet.add(name);
        else fires.add(name);
        const alerted = new Set(expected.map((e) => (isDict(e.exp_labels) ? String(e.exp_labels.cluster) : '')));
        if ([...clusters].some((cluster) => !alerted.has(cluster))) quiet.add(name);
      }
    }
    expect(alerts.filter((a) => !fires.has(a))).toEqual([]);
    expect(alerts.filter((a) => !quiet.has(a))).toEqual([]);
  });
});
