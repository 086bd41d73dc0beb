/**
 * Activities that must ask Temporal something (is a lock's holder still running, is a
 * restore reading the repository, is another run of this job going) do it through one
 * short-lived client: these questions are rare, so no connection is kept open.
 */
import { Client, Connection } from '@temporalio/client';
import type { DbopsConfig } from '../config/schema';

export async function withTemporalClient<T>(config: Pick<DbopsConfig, 'temporal'>, fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '10 seconds' });
  try {
    return await fn(new Client({ connection, namespace: config.temporal.namespace }));
  } finally {
    await connection.close();
  }
}

export interface TemporalAccess {
  /** Where Temporal is (for messages). */
  readonly address: string;
  withClient<T>(fn: (client: Client) => Promise<T>): Promise<T>;
}

export function temporalAccess(config: Pick<DbopsConfig, 'temporal'>): TemporalAccess {
  return { address: config.temporal.address, withClient: (fn) => withTemporalClient(config, fn) };
}
