/** A recorded gap in a cluster's backup chain (the next backup takes a full); cleared by the next full. */
import type { ChainState } from '../domain/chain';
import { layout } from './layout';
import type { Storage } from './storage';

export async function readChainState(storage: Storage, cluster: string): Promise<ChainState | null> {
  try {
    const text = await storage.readText(layout.chainState(cluster));
    return text === null ? null : (JSON.parse(text) as ChainState);
  } catch {
    return null;
  }
}

export async function writeChainState(storage: Storage, cluster: string, state: ChainState): Promise<void> {
  await storage.writeText(layout.chainState(cluster), JSON.stringify(state, null, 2) + '\n');
}
