/**
 * Continuous binlog archiving: one activity that streams the server's binary log into the
 * repository for a while (heartbeating where it is), deciding first where to start: the
 * end of what is published, or, when that cannot continue (purged, another server, gone
 * backwards), a new timeline, with an alert.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { planArchiveStart, timelineId, type ArchiveStart } from '../domain/binlogArchive';
import { nextBinlogName } from '../domain/chain';
import { durationSeconds } from '../domain/duration';
import { Failure } from '../domain/failures';
import type { Manifest } from '../domain/manifest';
import { ArchiveGapError, defaultConnectionServerId, runArchiver, type ArchiverProgress } from '../mysql/binlogArchiver';
import { currentBinlogPosition, inspectClusterWith, listBinlogsWith, withConnection } from '../mysql/connection';
import { toFailure } from '../mysql/errors';
import { BinlogArchive } from '../repository/binlogArchive';
import { accept, clusterOf, currentRun } from './context';
import type { ActivityDeps } from './deps';
import { cluster } from './schemas';

export interface ArchiveRunResult extends ArchiverProgress {
  started: ArchiveStart;
}

const ArchiveRunInput = z.strictObject({
  cluster,
  /** Set by the workflow after a run reported a gap the start plan cannot see (the file disagrees with the archive). */
  newTimeline: z.string().max(2000).nullable().default(null),
});

/** The file a fresh timeline starts in: where replay continues after the newest backup. */
function continueAfter(backups: readonly Manifest[]): string | null {
  const newest = [...backups].filter((m) => m.snapshot || m.binlogs).sort((a, b) => a.startedAt.localeCompare(b.startedAt)).pop();
  if (!newest) return null;
  if (newest.binlogs) return nextBinlogName(newest.binlogs.endFile);
  return newest.snapshot?.file ?? null;
}

export function createBinlogArchiveActivities(deps: ActivityDeps) {
  const { config, logger, repository, notifier, metrics } = deps;

  return {
    async archiveBinlogs(raw: { cluster: string; newTimeline?: string | null }): Promise<ArchiveRunResult> {
      const input = accept(ArchiveRunInput, raw, 'archiveBinlogs');
      const c = clusterOf(config, input.cluster);
      const ctx = Context.current();
      const archive = new BinlogArchive(repository.storage, c.name);
      const log = logger.child({ cluster: c.name, activity: 'archiveBinlogs', attempt: ctx.info.attempt });
      try {
        const { inspection, binlogs } = await withConnection(c, async (conn) => ({ inspection: await inspectClusterWith(conn, c), binlogs: await listBinlogsWith(conn) }));
        if (!inspection.logBin) throw ApplicationFailure.nonRetryable(`cluster ${c.name}: binary logging is off; enable log_bin to archive binlogs`, Failure.Config);
        const backups = (await repository.catalog.list(c.name)).map((b) => b.manifest).filter((m) => m.server.serverId === inspection.server.serverId);
        const tip = await archive.tip();
        let start = planArchiveStart({ tip, server: inspection.server, binlogs, preferred: continueAfter(backups) });
        if (input.newTimeline && start.action === 'resume') {
          start = { action: 'new', file: binlogs[0]?.name ?? start.file, reason: input.newTimeline, gap: true, previous: tip?.timeline.timeline ?? null, newHistory: true };
        }
        let timeline: string;
        let file: string;
        let position: number;
        if (start.action === 'new') {
          timeline = timelineId(new Date());
          if (tip && timeline <= tip.timeline.timeline) timeline = timelineId(new Date(Date.now() + 1000));
          await archive.writeTimeline({
            formatVersion: 1,
            timeline,
            server: inspection.server,
            startFile: start.file,
            startedAt: new Date().toISOString(),
            reason: start.reason,
            previous: start.previous,
            ...(start.newHistory ? { newHistory: true } : {}),
          });
          file = start.file;
          position = 0;
          log.warn({ timeline, file, reason: start.reason }, start.gap ? 'binlog archive gap: a new timeline starts' : 'binlog archive starts');
          if (start.gap) {
            await notifier.send({
              severity: 'critical',
              event: 'binlog-archive-gap',
              cluster: c.name,
              workflowId: currentRun().workflowId,
              message: `binlog archive of ${c.name} has a gap: ${start.reason}. A new timeline ${timeline} starts at ${file}; point-in-time restores across the gap need a new full backup.`,
            });
          }
        } else {
          timeline = start.timeline;
          file = start.file;
          position = start.position;
          log.info({ timeline, file, position }, 'binlog archive resumes');
        }
        await archive.removeUnpublished(timeline, file, position);

        const settings = c.binlogArchive;
        const progress = await withConnection(c, (conn) =>
          runArchiver({
            cluster: c,
            product: inspection.server.product,
            storage: repository.storage,
            archive,
            timeline,
            file,
            position,
            compression: config.repository.compression,
            compressionLevel: config.repository.binlogCompressionLevel ?? 1,
            connectionServerId: settings.connectionServerId ?? defaultConnectionServerId(c.name),
            flushMs: durationSeconds(settings.flushAfter) * 1000,
            flushBytes: settings.flushMiB << 20,
            runForMs: durationSeconds(settings.runFor) * 1000,
            signal: ctx.cancellationSignal,
            // A position counts only from the server the stream started on (a proxy may switch servers under us).
            sample: async () => {
              const [rows] = await conn.query<RowDataPacket[]>('SELECT @@server_id AS id');
              if (Number(rows[0]?.id) !== inspection.server.serverId) throw new Error(`cluster ${c.name} now answers as server id ${String(rows[0]?.id)}`);
              return currentBinlogPosition(conn);
            },
            onProgress: (p) => {
              ctx.heartbeat({ ...p, text: `${p.timeline} ${p.file}:${p.position}, ${p.segments} segment(s) published, complete up to ${p.coveredUntil ?? '-'}` });
              if (p.coveredUntil) metrics.binlogArchiveCovered.labels(c.name).set(Date.parse(p.coveredUntil) / 1000);
            },
          }),
        );
        // Stopped because the workflow cancelled it (pause, stop): what is published stays; report the cancellation.
        if (ctx.cancellationSignal.aborted) await ctx.cancelled;
        return { ...progress, started: start };
      } catch (error) {
        // Whatever broke while stopping, the run was cancelled: say so (the workflow pauses or stops).
        if (ctx.cancellationSignal.aborted) await ctx.cancelled;
        if (error instanceof ArchiveGapError) throw ApplicationFailure.nonRetryable(error.message, Failure.BinlogArchiveGap);
        log.error({ err: error }, 'binlog archive run failed');
        throw toFailure(error, c.name);
      }
    },
  };
}

export type BinlogArchiveActivities = ReturnType<typeof createBinlogArchiveActivities>;
