/**
 * The cluster lock on a real filesystem: of many runs that want a free cluster, or that all
 * found the same dead holder, exactly one gets it (compare-and-swap on the generation).
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ClusterLocks, LocalStorage, type LockHolder } from '../../src/repository';

const owner = (n: number): LockHolder => ({ workflowId: `backup-full/c/${n}`, runId: `run-${n}`, operation: 'full backup', since: '2026-12-01T00:00:00Z' });

function locks(): { locks: ClusterLocks; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbops-locks-'));
  return { locks: new ClusterLocks(new LocalStorage(dir)), dir };
}

test('ten runs want a free cluster at once: one gets it, nine are told who has it', async () => {
  const { locks: l } = locks();
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => l.tryAcquire('c', owner(i))));
  const winners = results.filter((r) => r === null);
  expect(winners).toHaveLength(1);
  const holder = await l.holder('c');
  expect(results.filter((r) => r !== null).every((r) => r?.workflowId === holder?.workflowId)).toBe(true);
});

test('two runs that both found the same dead holder: exactly one takes the cluster over', async () => {
  for (let round = 0; round < 20; round++) {
    const { locks: l } = locks();
    const dead = owner(100);
    expect(await l.tryAcquire('c', dead)).toBeNull();
    const [a, b] = await Promise.all([l.takeOver('c', owner(1), dead), l.takeOver('c', owner(2), dead)]);
    expect([a, b].filter((r) => r === null)).toHaveLength(1);
    const now = await l.holder('c');
    expect([owner(1).workflowId, owner(2).workflowId]).toContain(now?.workflowId);
    // The loser is told the winner, not the dead holder.
    expect((a ?? b)?.workflowId).toBe(now?.workflowId);
  }
});

test('release frees the cluster only for its holder; a retry of the holder keeps it; files are private', async () => {
  const { locks: l, dir } = locks();
  expect(await l.tryAcquire('c', owner(1))).toBeNull();
  expect(await l.tryAcquire('c', owner(1))).toBeNull();
  expect(await l.tryAcquire('c', owner(2))).toMatchObject({ workflowId: owner(1).workflowId });
  await l.release('c', owner(2).workflowId, owner(2).runId);
  expect(await l.holder('c')).toMatchObject({ workflowId: owner(1).workflowId });
  await l.release('c', owner(1).workflowId, owner(1).runId);
  expect(await l.holder('c')).toBeNull();
  expect(await l.tryAcquire('c', owner(2))).toBeNull();
  const lockDir = path.join(dir, 'c', '.locks', 'backup');
  for (const f of readdirSync(lockDir)) expect(statSync(path.join(lockDir, f)).mode & 0o777).toBe(0o600);
  expect(statSync(lockDir).mode & 0o777).toBe(0o700);
});
