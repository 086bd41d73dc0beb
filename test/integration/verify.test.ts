/** The verification that guards publishing (and `backup validate` later) catches corruption. */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startFullBackup, waitForManifest } from '../../src/client/backups';
import { openRepository, verifyArtifactFile } from '../../src/repository';
import { makeTestConfig, rootConnection, temporalClient, withWorker } from '../harness/context';
import { seedSampleDatabase } from '../../src/dev/sampleData';

test('a flipped byte or a truncated artifact is detected with the reason', async () => {
  const conn = await rootConnection();
  await seedSampleDatabase(conn, { database: 'verifytest', customers: 50, orders: 3000 });
  await conn.end();
  const setup = makeTestConfig('verify', { databases: ['verifytest'] });
  const { client, close } = await temporalClient();
  const manifest = await withWorker(setup.config, async () => waitForManifest(await startFullBackup(client, setup.config, { cluster: 'test' })));
  await close();
  const [stored] = await openRepository(setup.config).catalog.list('test');
  const artifact = manifest.artifacts[0]!;
  const original = path.join(stored!.dir!, artifact.name);
  expect(await verifyArtifactFile(original, artifact)).toEqual({ ok: true, problems: [] });

  const flipped = path.join(setup.dir, 'flipped.zst');
  const bytes = readFileSync(original);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  writeFileSync(flipped, bytes);
  const flippedCheck = await verifyArtifactFile(flipped, artifact);
  expect(flippedCheck.ok).toBe(false);
  expect(flippedCheck.problems.join('\n')).toMatch(/dump\.sql\.zst: sha256 [0-9a-f]{64}, manifest says/);

  const truncated = path.join(setup.dir, 'truncated.zst');
  copyFileSync(original, truncated);
  writeFileSync(truncated, readFileSync(original).subarray(0, artifact.size - 100));
  const truncatedCheck = await verifyArtifactFile(truncated, artifact);
  expect(truncatedCheck.problems).toEqual(
    expect.arrayContaining([expect.stringMatching(/size \d+, manifest says/), expect.stringMatching(/does not decompress/)]),
  );
  expect((await verifyArtifactFile(path.join(setup.dir, 'gone.zst'), artifact)).problems).toEqual(['dump.sql.zst: missing']);
});
