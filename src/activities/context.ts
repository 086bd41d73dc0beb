/**
 * What every activity does first: parse its input at the boundary (an input that does not
 * parse is InvalidInput, never retried), find the cluster in the worker's own config, and
 * know which workflow run it works for.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { findCluster } from '../config/load';
import type { ClusterConfig, DbopsConfig } from '../config/schema';
import { Failure } from '../domain/failures';
import { describeIssues } from '../domain/inputs';
import { toFailure } from '../mysql/errors';

export function accept<S extends z.ZodType>(schema: S, raw: unknown, activity: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(`${activity}: ${describeIssues(parsed.error)}`, Failure.InvalidInput);
  return parsed.data;
}

export function clusterOf(config: DbopsConfig, name: string): ClusterConfig {
  try {
    return findCluster(config, name);
  } catch (error) {
    throw toFailure(error, name);
  }
}

/** The workflow run this activity works for (lock ownership, alert attribution, markers). */
export function currentRun(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw ApplicationFailure.nonRetryable('this activity must run inside a workflow', Failure.InvalidInput);
  return run;
}

/**
 * A restore's progress heartbeats, each carrying the newest load checkpoint, and the
 * checkpoint an earlier attempt left in its last heartbeat (unchecked: the restore code
 * parses it and resumes only from one of its own kind).
 */
export function restoreHeartbeats(text: (p: { phase: string; bytes: number }) => string): {
  resume: unknown;
  onCheckpoint: (c: unknown) => void;
  onProgress: (p: { phase: string; bytes: number }) => void;
} {
  const ctx = Context.current();
  const details: unknown = ctx.info.heartbeatDetails;
  const resume = typeof details === 'object' && details !== null && 'checkpoint' in details ? (details as { checkpoint: unknown }).checkpoint : undefined;
  let checkpoint = resume;
  return {
    resume,
    onCheckpoint: (c) => {
      checkpoint = c;
      ctx.heartbeat({ phase: 'checkpoint', text: 'load checkpoint', checkpoint });
    },
    onProgress: (p) => ctx.heartbeat({ ...p, text: text(p), ...(checkpoint === undefined ? {} : { checkpoint }) }),
  };
}
