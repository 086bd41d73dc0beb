/**
 * Physical full backups on both products (MariaDB: mariadb-backup; MySQL: the clone
 * plugin): the server's files go into the repository as one artifact, come back as a
 * server of their own (unpacked, digest checked, prepared, started), and the binlogs
 * replay on it to a point in time: the tables equal the live ones at that point. A drill
 * from a physical full passes; a restore into the live server refuses one and says why;
 * a flipped byte in the stored artifact is found before any server starts on it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { startBackup, waitForManifest } from '../../src/client/backups';
import type { Manifest, Product } from '../../src/domain/manifest';
import { planRestore } from '../../src/domain/restorePlan';
import { currentBinlogPosition } from '../../src/mysql/connection';
import { provisionSandbox, sandboxCluster, teardownSandbox, type DrillSandbox } from '../../src/mysql/drillServer';
import { restorePhysicalFiles, type PhysicalSource } from '../../src/mysql/physicalRestore';
import { replayIntoRestoredInstance } from '../../src/mysql/restore';
import { openRepository } from '../../src/repository';
import { startMariadbSandbox } from '../../src/mysql/servers/mariadb';
import { startMysqlSandbox } from '../../src/mysql/servers/mysql';
import { harness, makeTestConfig, products, rootConnection, runCli, s3Objects, tableChecksums, temporalClient, withWorker } from '../harness/context';

const DB = 'phystest';

async function seed(conn: Connection): Promise<void> {
  await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
  await conn.query(`CREATE DATABASE ${DB} CHARACTER SET utf8mb4`);
  await conn.query(`CREATE TABLE ${DB}.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(40) NOT NULL, total DECIMAL(12,2), note BLOB, KEY k_customer (customer)) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE ${DB}.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6)) ENGINE=InnoDB`);
  await conn.query(`CREATE TABLE ${DB}.audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, what VARCHAR(20)) ENGINE=InnoDB`);
  await conn.query(`INSERT INTO ${DB}.orders (customer, total, note)
      SELECT CONCAT('c-', a.n * 10 + b.n), (a.n * 10 + b.n) * 1.25, UNHEX(SHA2(a.n * 10 + b.n, 256))
        FROM (SELECT 0 n UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9) a,
             (SELECT 0 n UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9) b`);
  await conn.query(`CREATE TRIGGER ${DB}.orders_ai AFTER INSERT ON ${DB}.orders FOR EACH ROW INSERT INTO ${DB}.audit (order_id, what) VALUES (NEW.id, 'inserted')`);
  await conn.query(`CREATE VIEW ${DB}.big_orders AS SELECT id, total FROM phystest.orders WHERE total > 50`);
}

function physicalConfig(name: string, product: Product, restoresDir: string) {
  return makeTestConfig(name, {
    product,
    databases: [DB],
    mutate: (raw) => {
      const c = (raw.clusters as Array<Record<string, unknown>>)[0]!;
      c.fullBackup = { engine: 'physical', threads: 2 };
      raw.physicalRestores = { dir: restoresDir };
    },
  });
}

function sourceOf(full: Manifest, relativePath: string): PhysicalSource {
  const artifact = full.artifacts.find((a) => a.name === full.physical!.artifact)!;
  return { fullId: full.id, fullPath: relativePath, format: full.physical!.format, artifact: artifact.name, rawSha256: artifact.rawSha256, rawSize: artifact.rawSize };
}

async function sandboxRoot(sandbox: DrillSandbox): Promise<Connection> {
  const password = readFileSync(path.join(sandbox.baseDir, 'secrets', 'root.password'), 'utf8').trim();
  return createConnection({ socketPath: sandbox.socket, user: 'root', password, supportBigNumbers: true, bigNumberStrings: true });
}

describe.each(products())('on %s', (product) => {
  let conn: Connection;
  let client: Client;
  let closeClient: () => Promise<void>;
  const restoresDir = path.join(harness().baseDir, `physical-restores-${product}`);
  const setup = physicalConfig(`physical-${product}`, product, restoresDir);
  let full: Manifest;
  let fullPath: string;

  beforeAll(async () => {
    process.env.DBOPS_DRILL_DIR = mkdtempSync(path.join(harness().baseDir, 'drills-'));
    // The restored server runs as an unprivileged OS user: the folders above its own must let it through.
    chmodSync(harness().baseDir, 0o711);
    chmodSync(process.env.DBOPS_DRILL_DIR, 0o711);
    mkdirSync(restoresDir);
    chmodSync(restoresDir, 0o711);
    conn = await rootConnection(product);
    await seed(conn);
    ({ client, close: closeClient } = await temporalClient());
  });
  afterAll(async () => {
    await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
    await conn.end();
    await closeClient();
  });

  test('a physical full starts as a server of its own and replays to a point in time: the tables equal the live ones then', async () => {
    let atTarget: Record<string, string> = {};
    let target: { file: string; position: number } = { file: '', position: 0 };
    await withWorker(setup.config, async () => {
      // Writes go on while the files are copied: the replay must apply each of them once (a
      // transaction both in the copy and replayed would duplicate a key or a row).
      const writer = await rootConnection(product);
      let writing = true;
      const writes = (async () => {
        while (writing) await writer.query(`INSERT INTO ${DB}.ticks (at) VALUES (NOW(6))`);
      })();
      try {
        full = await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
      } finally {
        writing = false;
        await writes;
        await writer.end();
      }
      // After the full: rows the replay must bring, then the point, then rows it must not.
      await conn.query(`INSERT INTO ${DB}.orders (customer, total) VALUES ('after-1', 10), ('after-2', 20)`);
      await conn.query(`UPDATE ${DB}.orders SET total = total + 1 WHERE id <= 30`);
      atTarget = await tableChecksums(conn, DB);
      const at = await currentBinlogPosition(conn);
      target = { file: at.file, position: at.position };
      await conn.query(`DELETE FROM phystest.orders WHERE id > 90`);
      await conn.query(`INSERT INTO ${DB}.orders (customer, total) VALUES ('too-late', 99)`);
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
    });
    expect(full.physical).toMatchObject({ format: product === 'mariadb' ? 'xbstream' : 'clone-tar' });
    expect(full.snapshot).not.toBeNull();
    expect(full.tables).toEqual([]);
    expect(full.artifacts).toHaveLength(1);
    expect(full.artifacts[0]!.rawSize).toBeGreaterThan(full.artifacts[0]!.size);
    expect(full.objects.views).toEqual([`${DB}.big_orders`]);

    const repository = openRepository(setup.config);
    const { backups } = await repository.reader().scan('test');
    fullPath = backups.find((b) => b.manifest.id === full.id)!.relativePath;
    const outcome = planRestore({ cluster: 'test', database: DB, target: { kind: 'position', ...target }, backups, chainState: null, now: new Date(), site: 'own-server' });
    if (!outcome.ok) throw new Error(outcome.reason);
    expect(outcome.plan.full.physical?.format).toBe(full.physical!.format);
    expect(outcome.plan.why).toMatch(/physical full/);
    expect(outcome.plan.binlogs.length).toBeGreaterThan(0);

    const cluster = setup.config.clusters[0]!;
    const drillId = `physical-pitr-${product}`;
    const sandbox = await provisionSandbox(drillId, 931, undefined, product, async (datadir) => {
      await restorePhysicalFiles({ source: sourceOf(full, fullPath), storage: repository.storage, datadir });
    });
    try {
      const r = await replayIntoRestoredInstance({ cluster: sandboxCluster(sandbox, cluster), product, storage: repository.storage, plan: outcome.plan, marker: 'physical-pitr', onProgress: () => undefined });
      expect(r.replay.transactions).toBeGreaterThan(0);
      const restored = await sandboxRoot(sandbox);
      try {
        expect(await tableChecksums(restored, DB)).toEqual(atTarget);
        // The trigger came with the files (and did not fire again for replayed rows: audit equals the source's at the point).
        const [triggers] = await restored.query<RowDataPacket[]>(`SELECT TRIGGER_NAME AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, [DB]);
        expect(triggers.map((t) => String(t.t))).toEqual(['orders_ai']);
        // Only the restored server's own accounts: the source's were dropped.
        const [users] = await restored.query<RowDataPacket[]>("SELECT User AS u FROM mysql.user WHERE User IN ('dbops', 'dbops_restore')");
        expect(users).toEqual([]);
      } finally {
        await restored.end();
      }
    } finally {
      await teardownSandbox(sandbox.baseDir);
    }
  });

  test('into the live server a physical full is refused, with the reason and the way out', () => {
    const outcome = planRestore({ cluster: 'test', database: DB, target: { kind: 'latest' }, backups: [{ manifest: full, relativePath: fullPath }], chainState: null, now: new Date() });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.reason).toMatch(/only physical fulls.*whole instance.*dbops drill run.*--engine dump/);
  });

  test('a drill from the physical full passes: the server starts on the files, every database replays to the latest point', async () => {
    await withWorker(setup.config, async () => {
      const run = await runCli(['drill', 'run', '--cluster', 'test', '--rpo', '1h', '--wait', '--json', '--config', setup.configPath]);
      expect(run.stderr).toBe('');
      const { report } = JSON.parse(run.stdout);
      expect(report).toMatchObject({ passed: true, problems: [], databases: [DB], fullId: full.id });
      expect(report.checks.find((c: { what: string }) => c.what === `physical full ${full.id}`)).toMatchObject({ ok: true });
      expect(report.checks.find((c: { what: string }) => c.what === 'schema objects')).toMatchObject({ ok: true, detail: expect.stringContaining('triggers 1/1') });
      expect(report.phases.map((p: { name: string }) => p.name)).toContain('restore physical full + start server');
    });
  });

  test('MariaDB: a physical incremental is prepared onto its full and the replay starts after it; MySQL refuses one, saying why', async () => {
    let atTarget: Record<string, string> = {};
    let target: { file: string; position: number } = { file: '', position: 0 };
    let refused = '';
    let incremental: Manifest | null = null;
    await withWorker(setup.config, async () => {
      await conn.query(`INSERT INTO ${DB}.orders (customer, total) VALUES ('before-inc', 5)`);
      await conn.query(`UPDATE ${DB}.orders SET note = REPEAT('n', 500) WHERE id % 7 = 0`);
      const started = startBackup(client, setup.config, 'incremental', { cluster: 'test', engine: 'physical' }, new Date(Date.now() + 2000));
      if (product === 'mysql') {
        refused = await started.then((h) => h.result()).then(() => 'taken', (error: unknown) => String((error as { cause?: { message?: string } }).cause?.message ?? error));
        return;
      }
      incremental = await waitForManifest(await started);
      await conn.query(`INSERT INTO ${DB}.orders (customer, total) VALUES ('after-inc', 6)`);
      atTarget = await tableChecksums(conn, DB);
      const at = await currentBinlogPosition(conn);
      target = { file: at.file, position: at.position };
      await conn.query(`DELETE FROM phystest.orders WHERE customer = 'after-inc'`);
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 4000)));
    });
    if (product === 'mysql') {
      expect(refused).toMatch(/is a MySQL clone, and the clone plugin has no incremental mode/);
      return;
    }
    const inc = incremental as unknown as Manifest;
    expect(inc).toMatchObject({ type: 'incremental', baseFullId: full.id, binlogs: null, physical: { format: 'xbstream' } });
    expect(inc.physical!.fromLsn).toBeGreaterThan(0);
    expect(inc.snapshot).not.toBeNull();
    // Far smaller than the full: only changed pages.
    expect(inc.artifacts[0]!.rawSize).toBeLessThan(full.artifacts[0]!.rawSize);

    const repository = openRepository(setup.config);
    const { backups } = await repository.reader().scan('test');
    const outcome = planRestore({ cluster: 'test', database: DB, target: { kind: 'position', ...target }, backups, chainState: null, now: new Date(), site: 'own-server' });
    if (!outcome.ok) throw new Error(outcome.reason);
    expect(outcome.plan.full.id).toBe(full.id);
    expect(outcome.plan.full.physical?.deltas?.map((d) => d.id)).toEqual([inc.id]);
    expect(outcome.plan.start).toEqual(inc.snapshot);
    // The binlog incremental taken after it still has its parent in the binlog chain (the physical incremental is no binlog parent).
    expect(backups.filter((b) => b.manifest.type === 'incremental' && b.manifest.binlogs).every((b) => b.manifest.parentId !== inc.id)).toBe(true);

    const source = { ...sourceOf(full, fullPath), deltas: outcome.plan.full.physical!.deltas };
    const sandbox = await provisionSandbox(`physical-inc-${product}`, 932, undefined, product, async (datadir) => {
      await restorePhysicalFiles({ source, storage: repository.storage, datadir });
    });
    try {
      await replayIntoRestoredInstance({ cluster: sandboxCluster(sandbox, setup.config.clusters[0]!), product, storage: repository.storage, plan: outcome.plan, marker: 'physical-inc', onProgress: () => undefined });
      const restored = await sandboxRoot(sandbox);
      try {
        expect(await tableChecksums(restored, DB)).toEqual(atTarget);
      } finally {
        await restored.end();
      }
    } finally {
      await teardownSandbox(sandbox.baseDir);
    }
  });

  test('restore physical: a new datadir at the latest point, with the source\'s accounts, starts as a server equal to the live database', async () => {
    let live: Record<string, string> = {};
    let result: { restored: { datadir: string; databases: Array<{ database: string; tables: unknown[] }> }; plan: { source: { fullId: string } } } | null = null;
    await withWorker(setup.config, async () => {
      // Everything written so far into a backup, so that the latest restorable point is the live state.
      await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 6000)));
      live = await tableChecksums(conn, DB);
      const dry = await runCli(['restore', 'physical', '--cluster', 'test', '--to', 'latest', '--name', `new-${product}`, '--dry-run', '--config', setup.configPath]);
      expect(dry.stdout).toMatch(/dry run: nothing written/);
      expect(dry.stdout).toContain(`physical full ${full.id}`);
      const run = await runCli(['restore', 'physical', '--cluster', 'test', '--to', 'latest', '--name', `new-${product}`, '--wait', '--json', '--config', setup.configPath]);
      expect(run.stderr).toBe('');
      result = JSON.parse(run.stdout);
      // The same name again is refused before anything is touched: the folder is another restore's.
      const again = await runCli(['restore', 'physical', '--cluster', 'test', '--to', 'latest', '--name', `new-${product}`, '--wait', '--config', setup.configPath]);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/already exists and is not this restore's/);
      // A path is not a name.
      const escape = await runCli(['restore', 'physical', '--cluster', 'test', '--to', 'latest', '--name', '../etc', '--config', setup.configPath]);
      expect(escape.stderr).toMatch(/--name \.\.\/etc: a folder name/);
    });
    const r = result!;
    expect(r.plan.source.fullId).toBe(full.id);
    expect(r.restored.datadir).toBe(path.join(restoresDir, `new-${product}`, 'data'));
    expect(r.restored.databases.map((d) => d.database)).toEqual([DB]);
    // An operator's start of the datadir (as root here, with the copy's own accounts).
    const server = product === 'mysql'
      ? await startMysqlSandbox({ baseDir: path.dirname(r.restored.datadir), serverId: 77, extraArgs: ['--skip-log-bin'] })
      : await startMariadbSandbox({ baseDir: path.dirname(r.restored.datadir), serverId: 77, extraArgs: ['--skip-log-bin'] });
    try {
      const restored = await createConnection({ socketPath: server.socket, user: 'root', supportBigNumbers: true, bigNumberStrings: true });
      try {
        expect(await tableChecksums(restored, DB)).toEqual(live);
        const [users] = await restored.query<RowDataPacket[]>("SELECT User AS u FROM mysql.user WHERE User IN ('dbops', 'dbops_restore', 'dbops_restore_tmp') ORDER BY User");
        expect(users.map((u) => String(u.u))).toEqual(['dbops', 'dbops_restore']);
      } finally {
        await restored.end();
      }
    } finally {
      await server.stop();
    }
  });

  test('a flipped byte in the stored files is found before a server starts on them', async () => {
    const repository = openRepository(setup.config);
    const root = setup.config.repository.path;
    if (!root) throw new Error('this test flips a byte in a local repository');
    const file = path.join(root, fullPath, full.physical!.artifact);
    const bytes = readFileSync(file);
    const original = Buffer.from(bytes);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(file, bytes);
    const datadir = mkdtempSync(path.join(harness().baseDir, 'flipped-'));
    try {
      await expect(restorePhysicalFiles({ source: sourceOf(full, fullPath), storage: repository.storage, datadir: path.join(datadir, 'data') })).rejects.toThrow(/zstd|does not match its manifest/);
    } finally {
      writeFileSync(file, original);
    }
    expect(statSync(file).size).toBe(original.length);
  });
});

describe.each(products())('on %s, repository in an encrypted S3 bucket', (product) => {
  test('a physical full streams sealed into the bucket and a drill starts a server on it', async () => {
    process.env.DBOPS_DRILL_DIR = mkdtempSync(path.join(harness().baseDir, 'drills-s3-'));
    chmodSync(harness().baseDir, 0o711);
    chmodSync(process.env.DBOPS_DRILL_DIR, 0o711);
    const conn = await rootConnection(product);
    const { client, close } = await temporalClient();
    const setup = makeTestConfig(`physs3-${product}`, {
      product,
      databases: [DB],
      s3: true,
      encrypted: true,
      mutate: (raw) => {
        (raw.clusters as Array<Record<string, unknown>>)[0]!.fullBackup = { engine: 'physical' };
      },
    });
    try {
      await seed(conn);
      const full = await withWorker(setup.config, async () => {
        const m = await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
        await conn.query(`INSERT INTO ${DB}.orders (customer, total) VALUES ('after', 1)`);
        await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
        const run = await runCli(['drill', 'run', '--cluster', 'test', '--rpo', '1h', '--wait', '--json', '--config', setup.configPath]);
        expect(run.stderr).toBe('');
        expect(JSON.parse(run.stdout).report).toMatchObject({ passed: true, fullId: m.id });
        return m;
      });
      expect(full.encryption).toMatchObject({ keyId: 'k1' });
      const stored = await s3Objects(setup.config.repository.s3!.prefix);
      const copy = stored.find((o) => o.key.endsWith(full.physical!.artifact));
      expect(copy).toBeDefined();
      // Sealed: not even the zstd frame magic is readable in the bucket.
      expect(copy!.body.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe(false);
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
      await conn.end();
      await close();
    }
  });
});
