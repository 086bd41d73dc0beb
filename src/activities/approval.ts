/**
 * The approval gate's questions to the worker: who may approve an action (its own config,
 * now), and who sent a decision (the Temporal identities recorded in the run's history).
 */
import { z } from 'zod';
import { approversFor, type ApprovalPolicy } from '../domain/approval';
import { accept, clusterOf, currentRun } from './context';
import type { ActivityDeps } from './deps';
import { ApprovalActionSchema, cluster } from './schemas';

const PolicyInput = z.strictObject({ cluster, action: ApprovalActionSchema });
const IdentitiesInput = z.strictObject({ signalOrdinal: z.number().int().positive().optional(), updateId: z.string().max(200).optional() });

export function createApprovalActivities(deps: ActivityDeps) {
  const { config, temporal } = deps;
  return {
    /** Who may approve an action on a cluster, read from this worker's config now (never from the workflow's input). */
    async approvalPolicy(raw: z.input<typeof PolicyInput>): Promise<ApprovalPolicy> {
      const input = accept(PolicyInput, raw, 'approvalPolicy');
      const c = clusterOf(config, input.cluster);
      return {
        approvers: approversFor(c.approvers, input.action),
        selfApproval: c.allowSelfApproval.includes(input.action),
        timeout: config.approval.timeout,
        escalateAfter: config.approval.escalateAfter,
      };
    },

    /**
     * The Temporal identities recorded in this run's history: of the client that started it,
     * and of the client that sent a decision (the n-th approve/reject signal, or an Update by
     * its id). What an identity is worth depends on the server's authorizer (README).
     */
    async callerIdentities(raw: z.input<typeof IdentitiesInput>): Promise<{ starter: string | null; decider: string | null }> {
      const input = accept(IdentitiesInput, raw, 'callerIdentities');
      const run = currentRun();
      const history = await temporal.withClient((client) => client.workflow.getHandle(run.workflowId, run.runId).fetchHistory());
      const events = history.events ?? [];
      const starter = events[0]?.workflowExecutionStartedEventAttributes?.identity || null;
      let decider: string | null = null;
      if (input.updateId !== undefined) {
        const accepted = events.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId === input.updateId);
        decider = accepted?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity || null;
      } else if (input.signalOrdinal !== undefined) {
        const signals = events.filter((e) => ['approve', 'reject'].includes(e.workflowExecutionSignaledEventAttributes?.signalName ?? ''));
        decider = signals[input.signalOrdinal - 1]?.workflowExecutionSignaledEventAttributes?.identity || null;
      }
      return { starter, decider };
    },
  };
}

export type ApprovalActivities = ReturnType<typeof createApprovalActivities>;
