/**
 * The approval gate's rules, shared by the workflow (signals, update validator) and the
 * CLI. Pure.
 *
 * Who may approve is the worker's decision, read from its own config when the approval is
 * requested (never from the workflow's input or the client's copy of the config). The
 * requester does not approve their own run (four eyes), unless the cluster's config allows
 * it for that action. A decision records the operator's name and the Temporal identity of
 * the client that sent it.
 */

/** The risky steps that wait for a person. */
export const APPROVAL_ACTIONS = ['restore-swap', 'restore-instance', 'archive-delete', 'retention-delete', 'drill-failover', 'schema-change'] as const;
export type ApprovalAction = (typeof APPROVAL_ACTIONS)[number];

export interface DecisionInput {
  operator: string;
  reason: string;
}

export interface ApprovalDecision {
  decision: 'approved' | 'rejected' | 'expired';
  by: string | null;
  /** The Temporal identity of the client that sent the decision (null when unknown or expired). */
  identity?: string | null;
  at: string;
  reason: string | null;
}

/** What the worker's config says for an action on a cluster, read when the approval is requested. */
export interface ApprovalPolicy {
  approvers: string[];
  /** The requester may approve their own run (config: clusters[].allowSelfApproval). */
  selfApproval: boolean;
  timeout: string;
  escalateAfter: string[];
}

export interface ApprovalState {
  action: string;
  cluster: string;
  summary: string;
  approvers: string[];
  /** Who asked for the run, and whether they may approve it themselves. */
  requestedBy?: string;
  requesterIdentity?: string | null;
  selfApproval?: boolean;
  requestedAt: string;
  deadline: string;
  status: 'pending' | 'approved' | 'rejected' | 'expired';
  decision: ApprovalDecision | null;
  escalations: Array<{ at: string; level: number }>;
  /** Decisions that were refused (signals cannot answer; this is where they are recorded). */
  refused: Array<{ operator: string; identity?: string | null; at: string; why: string }>;
}

/** Why a decision must be refused, or null when it may be applied (by name; identities are checked by the workflow). */
export function refuseDecision(state: ApprovalState | null, input: DecisionInput): string | null {
  if (!state) return 'this run is not waiting for an approval';
  if (state.status !== 'pending') return `already ${state.status}${state.decision?.by ? ` by ${state.decision.by}` : ''} at ${state.decision?.at ?? '?'}`;
  if (!input.operator?.trim()) return 'an operator name is required (--as NAME)';
  if (!input.reason?.trim()) return 'a reason is required (--reason TEXT)';
  if (!state.approvers.includes(input.operator)) {
    return `${input.operator} is not an approver for ${state.action} on ${state.cluster} (approvers: ${state.approvers.join(', ') || 'none configured'})`;
  }
  if (!state.selfApproval && state.requestedBy !== undefined && input.operator === state.requestedBy) {
    return selfApprovalRefusal(state.action, state.cluster, `${input.operator} requested this run`);
  }
  return null;
}

export function selfApprovalRefusal(action: string, cluster: string, why: string): string {
  return `the requester cannot approve their own run (${why}); ${action} on ${cluster} needs a second person, or clusters[].allowSelfApproval: [${action}] in the worker's config`;
}

/** Two decisions come from the same caller when the Temporal identities are known and equal. */
export function sameCaller(a: string | null | undefined, b: string | null | undefined): boolean {
  return typeof a === 'string' && typeof b === 'string' && a !== '' && a === b;
}

/** Approvers for an action on a cluster: the action's own list, else "*". */
export function approversFor(approvers: Partial<Record<string, string[]>>, action: string): string[] {
  return approvers[action] ?? approvers['*'] ?? [];
}
