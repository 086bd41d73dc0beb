/**
 * `dbops dev --demo`, the README's first command, on both products: the embedded stack comes up, the demo
 * backup is taken and listed, dev.json tells other tools where everything is, and SIGTERM
 * stops it all (no server left running).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { loadConfig } from '../../src/config/load';
import { resolveSecret } from '../../src/config/secrets';
import { processAlive } from '../../src/mysql/servers/local';
import { CLI, harness, products } from '../harness/context';

test.each(products())('dbops dev --product %s --demo: sandbox + dev server + worker, demo backup, clean stop on SIGTERM', async (product) => {
  const stateDir = mkdtempSync(path.join(harness().baseDir, 'dev-'));
  const child = spawn(process.execPath, [CLI, 'dev', '--product', product, '--state-dir', stateDir, '--demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!stdout.includes('running; Ctrl-C stops everything')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`dbops dev did not come up:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(stdout).toMatch(/demo: backup \d{8}T\d{6}\.\d{3}Z-full verified: 3 tables, 2200 rows/);
    expect(stdout).toMatch(/Web UI: http:\/\/localhost:\d+/);
    expect(stdout).toContain('schedules: dbops/sandbox/backup-differential, dbops/sandbox/backup-full, dbops/sandbox/backup-incremental, dbops/sandbox/drill, dbops/sandbox/drill-full, dbops/sandbox/retention');

    const state = JSON.parse(readFileSync(path.join(stateDir, 'dev.json'), 'utf8')) as {
      configPath: string;
      cluster: string;
      temporalAddress: string;
      uiUrl: string;
      metricsUrl: string;
      mysql: { host: string; port: number; socket: string; user: string };
    };
    expect(state.cluster).toBe('sandbox');
    expect(state.uiUrl).toMatch(/^http:\/\/localhost:\d+$/);
    const ui = await fetch(state.uiUrl);
    expect(ui.status).toBe(200);
    // The demo's backup shows in the metrics.
    expect(await (await fetch(state.metricsUrl)).text()).toMatch(/dbops_backup_last_success_timestamp_seconds\{cluster="sandbox",type="full"\} \d+/);

    // The generated config works with the least-privileged user and a file secret.
    const config = loadConfig(state.configPath);
    const password = resolveSecret(config.clusters[0]!.password!, 'password');
    expect(readFileSync(state.configPath, 'utf8')).not.toContain(password);
    const conn = await createConnection({ host: state.mysql.host, port: state.mysql.port, user: state.mysql.user, password });
    const [rows] = await conn.query('SELECT COUNT(*) AS n FROM shop.orders');
    expect(rows).toEqual([{ n: 2000 }]);
    await conn.end();
    expect(readFileSync(state.configPath, 'utf8')).toContain(product === 'mysql' ? 'product: mysql' : `socket: ${state.mysql.socket}`);
    const pidFile = path.join(stateDir, product, 'mysqld.pid');
    const mariadbPid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(processAlive(mariadbPid)).toBe(true);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(processAlive(mariadbPid)).toBe(false);
    expect(existsSync(state.mysql.socket)).toBe(false);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
