/**
 * One backup operation per cluster at a time, as a sequence of lock generations
 * (layout.lockGeneration), each saying who holds the cluster or that it is free. The
 * newest generation is the state. Every change (taking, taking over a dead holder's lock,
 * releasing) is the exclusive creation of the next generation, which exactly one writer
 * can win: a compare-and-swap on the generation number. Two runs that both see a stale
 * holder cannot both take the cluster over. On an object store the exclusive creation is a
 * conditional write (If-None-Match: *).
 */
import { layout } from './layout';
import type { Storage } from './storage';

/** Who holds a cluster's backup lock. */
export interface LockHolder {
  workflowId: string;
  runId: string;
  operation: string;
  since: string;
}

const UNREADABLE: LockHolder = { workflowId: '?', runId: '?', operation: 'an unreadable lock', since: '?' };

export class ClusterLocks {
  constructor(private readonly storage: Storage) {}

  /** The newest generation and what it says (generation 0: never locked). */
  async current(cluster: string): Promise<{ generation: number; holder: LockHolder | null }> {
    const generations = (await this.storage.children(layout.lockDir(cluster)))
      .map(layout.lockGenerationOf)
      .filter((g): g is number => g !== null)
      .sort((a, b) => a - b);
    const generation = generations[generations.length - 1] ?? 0;
    if (generation === 0) return { generation, holder: null };
    try {
      const state = JSON.parse((await this.storage.readText(layout.lockGeneration(cluster, generation))) ?? '') as { holder: LockHolder | null };
      return { generation, holder: state.holder };
    } catch {
      return { generation, holder: UNREADABLE };
    }
  }

  async holder(cluster: string): Promise<LockHolder | null> {
    return (await this.current(cluster)).holder;
  }

  /** Writes generation+1 if nobody else has: true when this writer won. */
  private async next(cluster: string, generation: number, holder: LockHolder | null): Promise<boolean> {
    const won = await this.storage.createExclusive(layout.lockGeneration(cluster, generation + 1), JSON.stringify({ generation: generation + 1, holder }));
    if (won) {
      // Keep the last few generations (what happened), drop older ones.
      for (const name of await this.storage.children(layout.lockDir(cluster))) {
        const g = layout.lockGenerationOf(name);
        if (g !== null && g < generation - 8) await this.storage.remove(layout.lockGeneration(cluster, g));
      }
    }
    return won;
  }

  /** Takes a free cluster; returns the current holder when someone else has it (null: ours now). */
  async tryAcquire(cluster: string, owner: LockHolder): Promise<LockHolder | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { generation, holder } = await this.current(cluster);
      if (holder && holder.workflowId === owner.workflowId && holder.runId === owner.runId) return null; // our own retry
      if (holder) return holder;
      if (await this.next(cluster, generation, owner)) return null;
    }
    return (await this.holder(cluster)) ?? { workflowId: '?', runId: '?', operation: 'a lock that changes too fast', since: '?' };
  }

  /** Takes over the lock of a holder known to be gone, if it is still that holder's: null when taken, else who holds it now. */
  async takeOver(cluster: string, owner: LockHolder, stale: LockHolder): Promise<LockHolder | null> {
    const { generation, holder } = await this.current(cluster);
    if (!holder || holder.workflowId !== stale.workflowId || holder.runId !== stale.runId) return holder ?? (await this.tryAcquire(cluster, owner));
    if (await this.next(cluster, generation, owner)) return null;
    return this.holder(cluster);
  }

  async release(cluster: string, workflowId: string, runId: string): Promise<void> {
    const { generation, holder } = await this.current(cluster);
    if (holder && holder.workflowId === workflowId && holder.runId === runId) await this.next(cluster, generation, null);
  }
}
