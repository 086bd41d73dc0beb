/**
 * A full backup never stalls the server's writes, and its snapshot and binlog position
 * agree even while the application writes. MySQL's dump is held still by dbops for a
 * moment (table READ locks, never a FLUSH): a long-running query does not delay it; a
 * long-open write transaction makes it give up after dumpLockWait, naming the transaction.
 * MariaDB's dump takes no lock at all.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { Client } from '@temporalio/client';
import { explainFailure, startBackup, waitForManifest } from '../../src/client/backups';
import { startPitr } from '../../src/client/restores';
import { parseTarget } from '../../src/domain/restoreTarget';
import { openRepository } from '../../src/repository';
import { makeTestConfig, products, rootConnection, tableChecksums, temporalClient, withWorker } from '../harness/context';

const DB = 'guardtest';

describe.each(products())('on %s', (product) => {
  let conn: Connection;
  let client: Client;
  let closeClient: () => Promise<void>;
  const config = (name: string, lockWait = '10s') =>
    makeTestConfig(`${name}-${product}`, { product, databases: [DB], mutate: (raw) => ((raw.clusters as Array<Record<string, unknown>>)[0]!.dumpLockWait = lockWait) });

  beforeAll(async () => {
    conn = await rootConnection(product);
    for (const d of [DB, `${DB}_copy`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await conn.query(`CREATE DATABASE ${DB}`);
    await conn.query(`CREATE TABLE ${DB}.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`);
    await conn.query(`INSERT INTO ${DB}.t (v) VALUES (1), (2)`);
    ({ client, close: closeClient } = await temporalClient());
  });
  afterAll(async () => {
    for (const d of [DB, `${DB}_copy`]) await conn.query(`DROP DATABASE IF EXISTS ${d}`);
    await conn.end();
    await closeClient();
  });

  test('a long-running query neither delays the backup nor holds writes', async () => {
    const setup = config('longquery');
    const sleeper = await rootConnection(product);
    const running = sleeper.query(`SELECT SLEEP(600), COUNT(*) FROM ${DB}.t`).catch(() => undefined);
    try {
      const manifest = await withWorker(setup.config, async () => {
        const backup = waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
        // Writes while the backup runs and the long query still runs: they go through.
        await conn.query(`UPDATE ${DB}.t SET v = v + 1 WHERE id = 2`);
        return backup;
      });
      expect(manifest).toMatchObject({ type: 'full', status: 'verified' });
      expect(manifest.snapshot?.file).toMatch(/^binlog\.\d+$/);
      await conn.query(`UPDATE ${DB}.t SET v = v + 1 WHERE id = 1`);
    } finally {
      await conn.query(`KILL QUERY ${sleeper.threadId}`).catch(() => undefined);
      await running;
      await sleeper.end();
    }
  });

  test('a long-open write transaction: MySQL gives up after dumpLockWait naming it; MariaDB needs no lock', async () => {
    const setup = config('openwrite', '2s');
    const writer = await rootConnection(product);
    await writer.query('START TRANSACTION');
    await writer.query(`UPDATE ${DB}.t SET v = v + 10 WHERE id = 1`);
    try {
      const outcome = await withWorker(setup.config, async () =>
        waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' })).then(
          (m) => ({ ok: true as const, id: m.id }),
          (error: unknown) => ({ ok: false as const, why: explainFailure(error) }),
        ),
      );
      if (product === 'mysql') {
        expect(outcome).toEqual({
          ok: false,
          why: expect.stringMatching(new RegExp(`waited 2s \\(dumpLockWait\\) .* gave up, so writes waited no longer than that; it waited behind a transaction of session ${writer.threadId} \\(root\\) open for \\d+ s`)),
        });
        expect(await openRepository(setup.config).catalog.list('test')).toEqual([]);
      } else {
        expect(outcome).toMatchObject({ ok: true });
      }
      // Other rows stay writable throughout.
      await conn.query(`UPDATE ${DB}.t SET v = v + 1 WHERE id = 2`);
    } finally {
      await writer.query('ROLLBACK');
      await writer.end();
    }
  });

  test('writes during the full backup: full + incremental restore to exactly the live table', async () => {
    const setup = config('concurrent');
    const app = await rootConnection(product);
    let writing = true;
    let written = 0;
    const load = (async () => {
      while (writing) {
        await app.query(`INSERT INTO ${DB}.t (v) VALUES (?)`, [written]);
        written += 1;
      }
    })();
    try {
      await withWorker(setup.config, async () => {
        await waitForManifest(await startBackup(client, setup.config, 'full', { cluster: 'test' }));
        writing = false;
        await load;
        await waitForManifest(await startBackup(client, setup.config, 'incremental', { cluster: 'test' }, new Date(Date.now() + 1000)));
        const restored = await startPitr(client, setup.config, { cluster: 'test', database: DB, target: parseTarget('latest'), into: `${DB}_copy`, requestedBy: 'jest' });
        await restored.result();
      });
      expect(written).toBeGreaterThan(0);
      const [[count]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${DB}_copy.t`)) as unknown as [[RowDataPacket]];
      expect(Number(count?.n)).toBe(2 + written);
      expect((await tableChecksums(conn, `${DB}_copy`)).t).toBe((await tableChecksums(conn, DB)).t);
    } finally {
      writing = false;
      await load.catch(() => undefined);
      await app.end();
    }
  });
});
