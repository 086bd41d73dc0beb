/**
 * One approval gate for every risky step (a table swap now; deletions in archiving and
 * retention later). Operators answer with the `approve` / `reject` signals (as the
 * mission asks) or the `decide` update, whose validator refuses at once (not an
 * approver, already decided) so the CLI can tell the operator. While nobody decides,
 * notifications escalate at the configured steps; at the deadline the safe outcome is
 * taken: abort. The decision (who, when, why) goes into the workflow result.
 */
import {
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import { notify } from './notify';
import { refuseDecision, type ApprovalDecision, type ApprovalState, type DecisionInput } from '../domain/approval';
import { SA_AWAITING_APPROVAL } from '../domain/searchAttributes';

export const approveSignal = defineSignal<[DecisionInput]>('approve');
export const rejectSignal = defineSignal<[DecisionInput]>('reject');
export const decideUpdate = defineUpdate<ApprovalState, [DecisionInput & { decision: 'approve' | 'reject' }]>('decide');
export const approvalQuery = defineQuery<ApprovalState | null>('approval');

export interface ApprovalRequest {
  action: string;
  cluster: string;
  summary: string;
  approvers: string[];
  /** Durations like "15m"; defaults 60m and 15m/30m (seed 000: 15 / 30 / 60 minutes). */
  timeout?: string;
  escalateAfter?: string[];
}

let state: ApprovalState | null = null;

function decide(input: DecisionInput, decision: 'approved' | 'rejected'): void {
  if (!state) return;
  const outcome: ApprovalDecision = { decision, by: input.operator, at: new Date().toISOString(), reason: input.reason };
  state = { ...state, status: decision, decision: outcome };
}

function onSignal(decision: 'approved' | 'rejected') {
  return (input: DecisionInput) => {
    const why = refuseDecision(state, input);
    if (why) {
      if (state) state = { ...state, refused: [...state.refused, { operator: input.operator, at: new Date().toISOString(), why }] };
      return;
    }
    decide(input, decision);
  };
}

/** Call at the start of a workflow that may ask for approval, so no early signal is lost. */
export function installApprovalHandlers(): void {
  setHandler(approvalQuery, () => state);
  setHandler(approveSignal, onSignal('approved'));
  setHandler(rejectSignal, onSignal('rejected'));
  setHandler(
    decideUpdate,
    (input) => {
      decide(input, input.decision === 'approve' ? 'approved' : 'rejected');
      return state as ApprovalState;
    },
    {
      validator: (input) => {
        const why = refuseDecision(state, input);
        if (why) throw new Error(why);
      },
    },
  );
}

export async function requestApproval(req: ApprovalRequest): Promise<ApprovalDecision> {
  const timeoutMs = msToNumber((req.timeout ?? '60m') as Parameters<typeof msToNumber>[0]);
  const steps = (req.escalateAfter ?? ['15m', '30m']).map((d) => msToNumber(d as Parameters<typeof msToNumber>[0])).filter((ms) => ms < timeoutMs).sort((a, b) => a - b);
  const requestedAt = Date.now();
  state = {
    action: req.action,
    cluster: req.cluster,
    summary: req.summary,
    approvers: req.approvers,
    requestedAt: new Date(requestedAt).toISOString(),
    deadline: new Date(requestedAt + timeoutMs).toISOString(),
    status: 'pending',
    decision: null,
    escalations: [],
    refused: [],
  };
  upsertSearchAttributes([{ key: SA_AWAITING_APPROVAL, value: true }]);
  setCurrentDetails(
    `**waiting for approval** of ${req.action} on \`${req.cluster}\`: ${req.summary}\n\n` +
      `approvers: ${req.approvers.join(', ') || 'none configured'}; deadline ${state.deadline} (then: abort)\n\n` +
      `\`dbops approvals approve <workflow id> --as NAME --reason TEXT\``,
  );
  await notify({ severity: 'info', event: 'approval-requested', cluster: req.cluster, message: `approval requested for ${req.action}: ${req.summary}` });

  const decided = () => state?.status !== 'pending';
  for (const [level, step] of steps.entries()) {
    if (await condition(decided, Math.max(1, step - (Date.now() - requestedAt)))) break;
    state = { ...state, escalations: [...state.escalations, { at: new Date().toISOString(), level: level + 1 }] };
    await notify({
      severity: level === 0 ? 'warning' : 'critical',
      event: 'approval-escalation',
      cluster: req.cluster,
      message: `still waiting for approval of ${req.action} on ${req.cluster} (escalation ${level + 1}): ${req.summary}`,
    });
  }
  if (!decided() && !(await condition(decided, Math.max(1, timeoutMs - (Date.now() - requestedAt))))) {
    state = { ...state, status: 'expired', decision: { decision: 'expired', by: null, at: new Date().toISOString(), reason: 'nobody decided before the deadline' } };
    await notify({ severity: 'critical', event: 'approval-expired', cluster: req.cluster, message: `approval for ${req.action} on ${req.cluster} expired; aborting: ${req.summary}` });
  }
  upsertSearchAttributes([{ key: SA_AWAITING_APPROVAL, value: false }]);
  return state.decision as ApprovalDecision;
}
