/**
 * The approval gate's rules, shared by the workflow (signals, update validator) and the
 * CLI. Pure.
 */
export interface DecisionInput {
  operator: string;
  reason: string;
}

export interface ApprovalDecision {
  decision: 'approved' | 'rejected' | 'expired';
  by: string | null;
  at: string;
  reason: string | null;
}

export interface ApprovalState {
  action: string;
  cluster: string;
  summary: string;
  approvers: string[];
  requestedAt: string;
  deadline: string;
  status: 'pending' | 'approved' | 'rejected' | 'expired';
  decision: ApprovalDecision | null;
  escalations: Array<{ at: string; level: number }>;
  /** Decisions that were refused (signals cannot answer; this is where they are recorded). */
  refused: Array<{ operator: string; at: string; why: string }>;
}

/** Why a decision must be refused, or null when it may be applied. */
export function refuseDecision(state: ApprovalState | null, input: DecisionInput): string | null {
  if (!state) return 'this run is not waiting for an approval';
  if (state.status !== 'pending') return `already ${state.status}${state.decision?.by ? ` by ${state.decision.by}` : ''} at ${state.decision?.at ?? '?'}`;
  if (!input.operator?.trim()) return 'an operator name is required (--as NAME)';
  if (!input.reason?.trim()) return 'a reason is required (--reason TEXT)';
  if (!state.approvers.includes(input.operator)) {
    return `${input.operator} is not an approver for ${state.action} on ${state.cluster} (approvers: ${state.approvers.join(', ') || 'none configured'})`;
  }
  return null;
}

/** Approvers for an action on a cluster: the action's own list, else "*". */
export function approversFor(approvers: Record<string, string[]>, action: string): string[] {
  return approvers[action] ?? approvers['*'] ?? [];
}
