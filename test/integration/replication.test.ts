/**
 * Replication health from a real replica: a second server replicating from a first. The
 * worker's /metrics reads it (threads, lag, last error) and the project's alert rules,
 * fed what was scraped, fire and stay quiet as they should:
 * - lag: the replica's SQL thread is held on a table lock while the source writes an
 *   event stamped an hour ago, so the lag is over the seed's 300 s without waiting 300 s;
 *   released, it catches up and the alert is quiet;
 * - a stopped SQL thread: DbopsReplicationStopped.
 * Connections against max_connections are read from the same scrape.
 * And backups from the replica: a full taken there records its source and restores to what
 * the source holds; a replica whose SQL thread stopped is refused before anything is dumped.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { explainFailure, startBackup, waitForManifest } from '../../src/client/backups';
import { approvalState, decide, startPitr } from '../../src/client/restores';
import { startSchemaChange } from '../../src/client/schemaChange';
import { parseIndexChange } from '../../src/domain/schemaChange';
import type { SchemaChangeResult } from '../../src/workflows/schemaChange';
import { createBackupUser, createRestoreUser } from '../../src/dev/sampleData';
import { parseTarget } from '../../src/domain/restoreTarget';
import { openRepository } from '../../src/repository';
import { startMariadbSandbox } from '../../src/mysql/servers/mariadb';
import { DbopsMetrics } from '../../src/metrics/metrics';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server';
import { currentBinlogPosition } from '../../src/mysql/connection';
import { freePort, type LocalServer } from '../../src/mysql/servers/local';
import { asPerson, harness, makeTestConfig, products, quietLogger, rootConnectionTo, scratchServer, tableChecksums, temporalClient, withWorker, type LoadTarget, type TestSetup } from '../harness/context';

const RULES = path.resolve(__dirname, '..', '..', 'monitoring', 'prometheus', 'dbops-rules.yml');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

/** Whether `alert` fires at 3m on series held at the scraped values (promtool test rules: a test expecting silence fails, naming what fired). */
function fires(alert: string, series: Array<{ name: string; labels: Record<string, string>; value: number }>): boolean {
  const dir = mkdtempSync(path.join(harness().baseDir, 'promtool-'));
  const lines = series.map((s) => `      - series: '${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}'\n        values: '${s.value}x10'`);
  writeFileSync(
    path.join(dir, 't.yml'),
    `rule_files:\n  - ${RULES}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n${lines.join('\n')}\n    alert_rule_test:\n      - eval_time: 3m\n        alertname: ${alert}\n        exp_alerts: []\n`,
  );
  try {
    execFileSync(PROMTOOL, ['test', 'rules', 't.yml'], { cwd: dir, stdio: 'pipe' });
    return false;
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer };
    const out = `${String(e.stdout ?? '')}${String(e.stderr ?? '')}`;
    if (!out.includes(`alertname="${alert}"`)) throw new Error(`promtool failed for another reason:\n${out}`);
    return true;
  }
}

describe.each(products())('a real replica on %s', (product) => {
  let source: LoadTarget & LocalServer;
  let replica: LoadTarget & LocalServer;
  let onSource: Connection;
  let onReplica: Connection;
  let setup: TestSetup;
  let metricsServer: MetricsServer | null = null;
  let client: Client;
  let closeClient: () => Promise<void>;
  const ids = { mariadb: 81, mysql: 91 }[product];

  const replicaStatus = async (): Promise<RowDataPacket | undefined> => (await onReplica.query<RowDataPacket[]>('SHOW REPLICA STATUS'))[0][0];
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 300; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`never: ${what}; SHOW REPLICA STATUS: ${JSON.stringify(await replicaStatus())}`);
  };
  /** One scrape of the worker's /metrics: the dbops_ series of the replica cluster. */
  const scrape = async (): Promise<Array<{ name: string; labels: Record<string, string>; value: number }>> => {
    const text = await (await fetch(metricsServer!.url)).text();
    return [...text.matchAll(/^(dbops_(?:mysql|replica)_[a-z_]+)\{([^}]*)\} (\S+)$/gm)]
      .map((m) => ({ name: m[1]!, labels: Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!])), value: Number(m[3]) }))
      .filter((s) => s.labels.cluster === 'replica');
  };
  /** Rows of rt.t on the replica (-1 while the table is not there yet). */
  const rowsOnReplica = async (): Promise<number> => {
    const [tables] = await onReplica.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'rt' AND TABLE_NAME = 't'");
    if (Number(tables[0]?.n) === 0) return -1;
    return Number((await onReplica.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM rt.t'))[0][0]?.n);
  };
  const value = (series: Awaited<ReturnType<typeof scrape>>, name: string) => series.find((s) => s.name === name)?.value;

  beforeAll(async () => {
    const base = path.join(harness().baseDir, `replication-${product}`);
    source = await scratchServer(product, path.join(base, 'source'), ids);
    // A replica that writes what it applies to its own binlog (MySQL's default; MariaDB's needs the option): its chain can replay the source's writes.
    replica =
      product === 'mariadb'
        ? Object.assign(await startMariadbSandbox({ baseDir: path.join(base, 'replica'), serverId: ids + 1, extraArgs: ['--log-slave-updates'] }), { product })
        : await scratchServer(product, path.join(base, 'replica'), ids + 1);
    onSource = await rootConnectionTo(source);
    onReplica = await rootConnectionTo(replica);
    const password = `pw-${Math.random().toString(36).slice(2)}`;
    const passwordFile = path.join(base, 'dbops.password');
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    await onSource.query("CREATE USER 'repl'@'%' IDENTIFIED BY ?", [password]);
    await onSource.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'");
    await createBackupUser(onReplica, 'dbops', password, '%', product);
    await createRestoreUser(onReplica, 'dbops_restore', password);
    const at = await currentBinlogPosition(onSource);
    if (product === 'mysql') {
      await onReplica.query(
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=?, SOURCE_USER='repl', SOURCE_PASSWORD=?, SOURCE_LOG_FILE=?, SOURCE_LOG_POS=?, SOURCE_AUTO_POSITION=0, GET_SOURCE_PUBLIC_KEY=1",
        [source.port, password, at.file, at.position],
      );
    } else {
      await onReplica.query("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no", [source.port, password, at.file, at.position]);
    }
    await onReplica.query('START REPLICA');
    await onSource.query('CREATE DATABASE rt');
    await onSource.query('CREATE TABLE rt.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
    await onSource.query('INSERT INTO rt.t VALUES (1, 1)');
    await until('the replica has the first row', async () => (await rowsOnReplica()) === 1);

    const listen = `127.0.0.1:${await freePort()}`;
    setup = makeTestConfig(`replication-${product}`, {
      product,
      mutate: (raw) => {
        const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        Object.assign(c, { name: 'replica', host: '127.0.0.1', port: replica.port, password: { file: passwordFile }, restorePassword: { file: passwordFile }, databases: ['rt'] });
        delete c.socket;
        raw.metrics = { listen };
      },
    });
    metricsServer = await startMetricsServer(setup.config, quietLogger, new DbopsMetrics(), null);
    ({ client, close: closeClient } = await temporalClient());
  });

  afterAll(async () => {
    await closeClient?.();
    await metricsServer?.close();
    await onReplica?.end().catch(() => undefined);
    await onSource?.end().catch(() => undefined);
    await replica?.stop().catch(() => undefined);
    await source?.stop().catch(() => undefined);
  });

  test('a replica in step: threads running, no lag, connections read; no replication alert', async () => {
    await until('lag 0', async () => Number((await replicaStatus())?.Seconds_Behind_Master ?? (await replicaStatus())?.Seconds_Behind_Source) === 0);
    const series = await scrape();
    expect(value(series, 'dbops_mysql_up')).toBe(1);
    expect(value(series, 'dbops_replica_io_running')).toBe(1);
    expect(value(series, 'dbops_replica_sql_running')).toBe(1);
    // In step: the server says 0, or a second while it applies a heartbeat; far under the 300 s line either way.
    expect(value(series, 'dbops_replica_lag_seconds')).toBeLessThan(300);
    expect(series.find((s) => s.name === 'dbops_replica_lag_seconds')?.labels.source).toBe(`127.0.0.1:${source.port}`);
    expect(value(series, 'dbops_mysql_max_connections')).toBeGreaterThan(0);
    expect(value(series, 'dbops_mysql_connections')).toBeGreaterThanOrEqual(2); // this test's root session and the scrape's
    expect(fires('DbopsReplicaLagHigh', series)).toBe(false);
    expect(fires('DbopsReplicationStopped', series)).toBe(false);
  });

  test('a replica more than 300 s behind raises DbopsReplicaLagHigh; caught up, it is quiet again', async () => {
    const holder = await rootConnectionTo(replica);
    try {
      await holder.query('LOCK TABLES rt.t WRITE');
      // An event stamped an hour ago, held on the replica by the lock: the replica is that far behind.
      await onSource.query('SET TIMESTAMP = UNIX_TIMESTAMP() - 3600');
      await onSource.query('INSERT INTO rt.t VALUES (2, 2)');
      await onSource.query('SET TIMESTAMP = DEFAULT');
      await until('the replica reports the lag', async () => {
        const s = await replicaStatus();
        return Number(s?.Seconds_Behind_Master ?? s?.Seconds_Behind_Source ?? 0) > 300;
      });
      const series = await scrape();
      expect(value(series, 'dbops_replica_lag_seconds')).toBeGreaterThan(300);
      expect(fires('DbopsReplicaLagHigh', series)).toBe(true);
    } finally {
      await holder.query('UNLOCK TABLES');
      await holder.end();
    }
    await until('caught up', async () => (await rowsOnReplica()) === 2);
    await until('lag 0', async () => {
      const s = await replicaStatus();
      return Number(s?.Seconds_Behind_Master ?? s?.Seconds_Behind_Source) === 0;
    });
    expect(fires('DbopsReplicaLagHigh', await scrape())).toBe(false);
  });

  test('a stopped SQL thread raises DbopsReplicationStopped', async () => {
    await onReplica.query('STOP REPLICA SQL_THREAD');
    try {
      const series = await scrape();
      expect(value(series, 'dbops_replica_sql_running')).toBe(0);
      expect(value(series, 'dbops_replica_io_running')).toBe(1);
      expect(series.some((s) => s.name === 'dbops_replica_lag_seconds')).toBe(false); // the server cannot say
      expect(fires('DbopsReplicationStopped', series)).toBe(true);
    } finally {
      await onReplica.query('START REPLICA SQL_THREAD');
    }
  });

  test("a full backup of the replica records its source, and restores to exactly what the source holds", async () => {
    await onSource.query('INSERT INTO rt.t VALUES (3, 3), (4, 4)');
    await until('caught up', async () => (await rowsOnReplica()) === 4);
    const manifest = await withWorker(setup.config, async () => waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'replica' })));
    expect(manifest.server.replicaOf).toEqual({ source: `127.0.0.1:${source.port}`, lagSeconds: expect.any(Number) });
    // The snapshot's GTID set names the source's own transactions (its server uuid / server id).
    const sourceId = product === 'mysql' ? String((await onSource.query<RowDataPacket[]>('SELECT @@server_uuid AS u'))[0][0]?.u) : `-${ids}-`;
    expect(manifest.snapshot?.gtidSet).toContain(sourceId);
    // Writes after the full, replicated, then an incremental of the replica's own binlogs:
    // they hold the source's writes (log_slave_updates), and the restore replays them.
    await onSource.query('UPDATE rt.t SET v = v * 10 WHERE id >= 3');
    await until('caught up', async () => Number((await onReplica.query<RowDataPacket[]>('SELECT SUM(v) AS s FROM rt.t'))[0][0]?.s) === 73);
    await withWorker(setup.config, async () => {
      const incremental = await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'replica' }));
      expect(incremental.parentId).toBe(manifest.id);
      await (await startPitr(client, setup.config, { cluster: 'replica', database: 'rt', target: parseTarget('latest'), into: 'rt_copy', requestedBy: 'jest' })).result();
    });
    const rows = async (conn: Connection, db: string) => (await conn.query<RowDataPacket[]>(`SELECT id, v FROM ${db}.t ORDER BY id`))[0].map((r) => `${String(r.id)}:${String(r.v)}`);
    expect(await rows(onReplica, 'rt_copy')).toEqual(await rows(onSource, 'rt'));
    expect(await tableChecksums(onReplica, 'rt_copy')).toEqual(await tableChecksums(onSource, 'rt'));
  });

  test('a replica whose SQL thread stopped is refused before anything is dumped', async () => {
    const refused = makeTestConfig(`replication-refused-${product}`, {
      product,
      mutate: (raw) => {
        const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        Object.assign(c, { name: 'replica', host: '127.0.0.1', port: replica.port, password: setup.config.clusters[0]!.password, databases: ['rt'] });
      },
    });
    await onReplica.query('STOP REPLICA SQL_THREAD');
    try {
      const outcome = await withWorker(refused.config, async () =>
        waitForManifest(await startBackup(client, refused.config, 'full', { cluster: 'replica' })).then(
          () => 'published',
          (error: unknown) => explainFailure(error),
        ),
      );
      expect(outcome).toMatch(new RegExp(`cluster replica: this server is a replica of 127\\.0\\.0\\.1:${source.port} and its SQL thread is not running: a backup of it would not hold what the source holds`));
      expect(await openRepository(refused.config).catalog.list('replica')).toEqual([]);
    } finally {
      await onReplica.query('START REPLICA SQL_THREAD');
    }
  });

  test("an index change on the source waits while its replica lags past pauseAt, goes once it caught up, and reports the lag it saw", async () => {
    // The change's account on the source, made there only (not replicated: the replica has its own).
    await onSource.query('SET SESSION sql_log_bin = 0');
    await createRestoreUser(onSource, 'dbops_restore', readFileSync((setup.config.clusters[0]!.password as { file: string }).file, 'utf8').trim());
    await onSource.query('SET SESSION sql_log_bin = 1');
    const both = makeTestConfig(`replication-schema-${product}`, {
      product,
      mutate: (raw) => {
        const r = (raw.clusters as Array<Record<string, unknown>>)[0]!;
        Object.assign(r, { name: 'replica', host: '127.0.0.1', port: replica.port, password: setup.config.clusters[0]!.password, restorePassword: setup.config.clusters[0]!.password, databases: ['rt'] });
        const src = { ...r, name: 'source', port: source.port, user: 'dbops_restore', approvers: { 'schema-change': ['alice'] }, schemaChange: { replicas: ['replica'], pauseAt: { replicaLag: '60s' }, sampleEvery: '300ms', watchFor: '0s', diskHeadroomGiB: 0 } };
        raw.clusters = [src, r];
      },
    });
    const holder = await rootConnectionTo(replica);
    let locked = true;
    try {
      await holder.query('LOCK TABLES rt.t WRITE');
      await onSource.query('SET TIMESTAMP = UNIX_TIMESTAMP() - 3600');
      await onSource.query('INSERT INTO rt.t VALUES (5, 5)');
      await onSource.query('SET TIMESTAMP = DEFAULT');
      await until('the replica reports the lag', async () => {
        const st = await replicaStatus();
        return Number(st?.Seconds_Behind_Master ?? st?.Seconds_Behind_Source ?? 0) > 60;
      });
      const result = await withWorker(both.config, async () => {
        const handle = await startSchemaChange(client, both.config, { cluster: 'source', database: 'rt', change: parseIndexChange('CREATE INDEX idx_v ON t (v)', 'rt'), requestedBy: 'carol' });
        for (let i = 0; (await approvalState(client, handle.workflowId).catch(() => null))?.status !== 'pending'; i++) {
          if (i > 600) throw new Error('never asked for an approval');
          await new Promise((r) => setTimeout(r, 200));
        }
        await asPerson('alice', (c) => decide(c, handle.workflowId, 'approve', 'alice', 'CHG-81'));
        // Until the build's heartbeat says it holds the start for the replica.
        for (let i = 0; ; i++) {
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          const payload = pending.find((a) => a.activityType?.name === 'applySchemaChange')?.heartbeatDetails?.payloads?.[0];
          const details = payload ? (defaultPayloadConverter.fromPayload(payload) as { phase?: string; why?: string }) : null;
          if (details?.phase === 'waiting' && /replica replica \d+ s behind > 60 s/.test(details.why ?? '')) break;
          if (i > 600) throw new Error(`the change never waited for the replica: ${JSON.stringify(details)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        const indexed = async (conn: Connection) => (await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'rt' AND TABLE_NAME = 't' AND INDEX_NAME = 'idx_v'"))[0][0]?.n;
        expect(Number(await indexed(onSource))).toBe(0);
        await holder.query('UNLOCK TABLES');
        locked = false;
        const done = (await handle.result()) as SchemaChangeResult;
        await until('the index replicated', async () => Number(await indexed(onReplica)) > 0);
        return done;
      });
      expect(result.status).toBe('done');
      expect(result.build).toMatchObject({ outcome: 'done' });
      expect(result.build!.peakLagSeconds).toBeGreaterThan(60);
    } finally {
      if (locked) await holder.query('UNLOCK TABLES');
      await holder.end();
    }
  });
});
