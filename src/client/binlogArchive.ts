/** The continuous binlog archive from the CLI: start it (schedules apply does, for clusters that enable it), pause, resume, stop, ask where it is. */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { findCluster } from '../config/load';
import type { DbopsConfig } from '../config/schema';
import { binlogArchiveWorkflowId } from '../domain/naming';
import { SA_CLUSTER, SA_OPERATION } from '../domain/searchAttributes';
import { archiveState, binlogArchiveWorkflow, pauseArchive, resumeArchive, stopArchive, type BinlogArchiveState } from '../workflows/binlogArchive';

/** Starts the cluster's archive workflow unless it runs already; true when it was started now. */
export async function ensureBinlogArchive(client: Client, config: DbopsConfig, cluster: string, requestedBy: string): Promise<boolean> {
  findCluster(config, cluster);
  try {
    await client.workflow.start(binlogArchiveWorkflow, {
      taskQueue: config.temporal.taskQueue,
      workflowId: binlogArchiveWorkflowId(cluster),
      args: [{ cluster, requestedBy }],
      typedSearchAttributes: [
        { key: SA_CLUSTER, value: cluster },
        { key: SA_OPERATION, value: 'binlog-archive' },
      ],
      staticSummary: `Continuous binlog archive of ${cluster}`,
      staticDetails: `Streams the binary log of ${cluster} into the repository as segments published within clusters[].binlogArchive.flushAfter; pause, resume and stop with \`dbops binlogs\`.`,
    });
    return true;
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw error;
  }
}

/** For every cluster with binlogArchive.enabled: started now, or already running. */
export async function ensureBinlogArchives(client: Client, config: DbopsConfig, requestedBy: string): Promise<Array<{ cluster: string; started: boolean }>> {
  const out: Array<{ cluster: string; started: boolean }> = [];
  for (const c of config.clusters.filter((x) => x.binlogArchive.enabled)) out.push({ cluster: c.name, started: await ensureBinlogArchive(client, config, c.name, requestedBy) });
  return out;
}

export type ArchiveControl = 'pause' | 'resume' | 'stop';

export async function controlBinlogArchive(client: Client, config: DbopsConfig, cluster: string, what: ArchiveControl, by: string, reason?: string): Promise<void> {
  findCluster(config, cluster);
  const handle = client.workflow.getHandle(binlogArchiveWorkflowId(cluster));
  const signal = what === 'pause' ? pauseArchive : what === 'resume' ? resumeArchive : stopArchive;
  await handle.signal(signal, { by, ...(reason ? { reason } : {}) });
}

/** The running workflow's state, or null when none runs. */
export async function binlogArchiveState(client: Client, config: DbopsConfig, cluster: string): Promise<BinlogArchiveState | null> {
  findCluster(config, cluster);
  try {
    const handle = client.workflow.getHandle(binlogArchiveWorkflowId(cluster));
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return null;
    return await handle.query(archiveState);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
}
