/**
 * Which restore created which database on a live server. A restore claims its target here
 * before CREATE DATABASE and marks the claim "created" right after, so a retry of the same
 * run knows the database is its own (and may drop and load it again), and nothing else is
 * ever dropped: a database that exists without this run's "created" claim is someone
 * else's. Kept in the repository because MySQL databases carry no comment to hold a mark.
 */
import { z } from 'zod';
import { layout } from './layout';
import type { Storage } from './storage';

const ClaimSchema = z.strictObject({
  run: z.string().min(1).max(1000),
  state: z.enum(['claimed', 'created']),
  at: z.string(),
});
export type RestoreClaim = z.infer<typeof ClaimSchema>;

export async function readRestoreClaim(storage: Storage, cluster: string, database: string): Promise<RestoreClaim | null> {
  const text = await storage.readText(layout.restoreClaim(cluster, database));
  if (text === null) return null;
  try {
    return ClaimSchema.parse(JSON.parse(text));
  } catch {
    return null; // unreadable: proves nothing, so the database is not ours
  }
}

export async function writeRestoreClaim(storage: Storage, cluster: string, database: string, run: string, state: RestoreClaim['state'], now = new Date()): Promise<void> {
  await storage.writeText(layout.restoreClaim(cluster, database), JSON.stringify({ run, state, at: now.toISOString() }) + '\n');
}

/** Removes the claim if it is this run's (after the run dropped its database). */
export async function releaseRestoreClaim(storage: Storage, cluster: string, database: string, run: string): Promise<void> {
  const claim = await readRestoreClaim(storage, cluster, database);
  if (claim?.run === run) await storage.remove(layout.restoreClaim(cluster, database));
}
