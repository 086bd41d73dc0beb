/**
 * One approval gate for every risky step (a table swap, the delete phase of archiving and
 * retention, the drill's failover rehearsal). Operators answer with the `approve` /
 * `reject` signals (as the mission asks) or the `decide` Update, whose validator refuses at
 * once (not an approver, already decided, the requester themselves) so the CLI can tell the
 * operator.
 *
 * Who may approve is asked of the worker when the approval is requested (its own config).
 * Before a decision counts, the Temporal identity of the client that sent it is read from
 * the run's history: a decision from the same client that started the run is the
 * requester approving themselves, refused unless the config allows it for the action.
 * While nobody decides, notifications escalate at the configured steps; at the deadline the
 * safe outcome is taken: abort. The decision (who, from which client, when, why) goes into
 * the workflow result. A malformed payload is recorded as refused, never a failed task.
 */
import {
  ApplicationFailure,
  condition,
  currentUpdateInfo,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { ApprovalActivities } from '../activities';
import { notify } from './notify';
import { refuseDecision, sameCaller, selfApprovalRefusal, type ApprovalAction, type ApprovalDecision, type ApprovalState, type DecisionInput } from '../domain/approval';
import { DecideUpdateSchema, DecisionInputSchema, describeIssues, type Requester } from '../domain/inputs';
import { NON_RETRYABLE_TYPES, Failure } from '../domain/failures';
import { SA_AWAITING_APPROVAL } from '../domain/searchAttributes';

export const approveSignal = defineSignal<[DecisionInput]>('approve');
export const rejectSignal = defineSignal<[DecisionInput]>('reject');
export const decideUpdate = defineUpdate<ApprovalState, [DecisionInput & { decision: 'approve' | 'reject' }]>('decide');
export const approvalQuery = defineQuery<ApprovalState | null>('approval');

const gate = proxyActivities<ApprovalActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_TYPES } });

export interface ApprovalRequest {
  action: ApprovalAction;
  cluster: string;
  summary: string;
  requester: Requester;
}

interface Candidate {
  input: DecisionInput;
  decision: 'approved' | 'rejected';
  /** Where the decision came from, to find its caller's identity in the history. */
  source: { signalOrdinal: number } | { updateId: string };
  outcome?: { ok: true } | { ok: false; why: string };
}

let state: ApprovalState | null = null;
let candidates: Candidate[] = [];
let signalsSeen = 0;

function refuse(operator: string, identity: string | null, why: string): void {
  if (state) state = { ...state, refused: [...state.refused, { operator, identity, at: new Date().toISOString(), why }] };
}

function onSignal(decision: 'approved' | 'rejected') {
  return (raw: unknown) => {
    signalsSeen += 1;
    const parsed = DecisionInputSchema.safeParse(raw);
    if (!parsed.success) {
      refuse(typeof (raw as { operator?: unknown })?.operator === 'string' ? String((raw as { operator: string }).operator).slice(0, 100) : '?', null, `malformed decision: ${describeIssues(parsed.error)}`);
      return;
    }
    const why = refuseDecision(state, parsed.data);
    if (why) {
      refuse(parsed.data.operator, null, why);
      return;
    }
    candidates.push({ input: parsed.data, decision, source: { signalOrdinal: signalsSeen } });
  };
}

/** Call at the start of a workflow that may ask for approval, so no early signal is lost. */
export function installApprovalHandlers(): void {
  setHandler(approvalQuery, () => state);
  setHandler(approveSignal, onSignal('approved'));
  setHandler(rejectSignal, onSignal('rejected'));
  setHandler(
    decideUpdate,
    async (raw) => {
      const input = DecideUpdateSchema.parse(raw);
      const candidate: Candidate = {
        input: { operator: input.operator, reason: input.reason },
        decision: input.decision === 'approve' ? 'approved' : 'rejected',
        source: { updateId: currentUpdateInfo()?.id ?? '' },
      };
      candidates.push(candidate);
      await condition(() => candidate.outcome !== undefined);
      const outcome = candidate.outcome as NonNullable<Candidate['outcome']>;
      if (!outcome.ok) throw ApplicationFailure.nonRetryable(outcome.why, Failure.ApprovalRefused);
      return state as ApprovalState;
    },
    {
      validator: (raw) => {
        const parsed = DecideUpdateSchema.safeParse(raw);
        if (!parsed.success) throw new Error(`malformed decision: ${describeIssues(parsed.error)}`);
        const why = refuseDecision(state, parsed.data);
        if (why) throw new Error(why);
      },
    },
  );
}

/** Checks a candidate decision against the identities in the history, then applies it or refuses it. */
async function settle(candidate: Candidate, requester: Requester): Promise<void> {
  const byName = refuseDecision(state, candidate.input);
  if (byName) {
    refuse(candidate.input.operator, null, byName);
    candidate.outcome = { ok: false, why: byName };
    return;
  }
  const ids = await gate.callerIdentities('signalOrdinal' in candidate.source ? { signalOrdinal: candidate.source.signalOrdinal } : { updateId: candidate.source.updateId });
  const requesterIdentity = requester.identity ?? ids.starter;
  if (state && !state.selfApproval && sameCaller(ids.decider, requesterIdentity)) {
    const why = selfApprovalRefusal(state.action, state.cluster, `the decision came from the client that started it, ${ids.decider}`);
    refuse(candidate.input.operator, ids.decider, why);
    candidate.outcome = { ok: false, why };
    return;
  }
  if (!state || state.status !== 'pending') {
    candidate.outcome = { ok: false, why: refuseDecision(state, candidate.input) ?? 'no longer pending' };
    return;
  }
  const decision: ApprovalDecision = { decision: candidate.decision, by: candidate.input.operator, identity: ids.decider, at: new Date().toISOString(), reason: candidate.input.reason };
  state = { ...state, status: candidate.decision, decision };
  candidate.outcome = { ok: true };
}

export async function requestApproval(req: ApprovalRequest): Promise<ApprovalDecision> {
  const policy = await gate.approvalPolicy({ cluster: req.cluster, action: req.action });
  const timeoutMs = msToNumber(policy.timeout as Parameters<typeof msToNumber>[0]);
  const steps = policy.escalateAfter.map((d) => msToNumber(d as Parameters<typeof msToNumber>[0])).filter((ms) => ms < timeoutMs).sort((a, b) => a - b);
  const requestedAt = Date.now();
  candidates = candidates.filter((c) => c.outcome === undefined);
  state = {
    action: req.action,
    cluster: req.cluster,
    summary: req.summary,
    approvers: policy.approvers,
    requestedBy: req.requester.name,
    requesterIdentity: req.requester.identity,
    selfApproval: policy.selfApproval,
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
      `requested by ${req.requester.name}; approvers: ${policy.approvers.join(', ') || 'none configured'}${policy.selfApproval ? '' : ' (not the requester)'}; deadline ${state.deadline} (then: abort)\n\n` +
      `\`dbops approvals approve <workflow id> --as NAME --reason TEXT\``,
  );
  await notify({ severity: 'info', event: 'approval-requested', cluster: req.cluster, message: `approval requested for ${req.action}: ${req.summary}` });

  const decided = () => state?.status !== 'pending';
  /** Waits until a decision is made or `untilMs` (since the request) has passed, settling candidates as they come. */
  const waitUntil = async (untilMs: number): Promise<void> => {
    while (!decided()) {
      const left = untilMs - (Date.now() - requestedAt);
      if (left <= 0) return;
      if (!(await condition(() => candidates.length > 0, left))) return;
      while (candidates.length > 0 && !decided()) await settle(candidates.shift() as Candidate, req.requester);
    }
    // Decisions that arrive after one was taken are answered, not left waiting.
    for (const c of candidates.splice(0)) c.outcome = { ok: false, why: refuseDecision(state, c.input) ?? 'already decided' };
  };
  for (const [level, step] of steps.entries()) {
    await waitUntil(step);
    if (decided()) break;
    state = { ...state, escalations: [...state.escalations, { at: new Date().toISOString(), level: level + 1 }] };
    await notify({
      severity: level === 0 ? 'warning' : 'critical',
      event: 'approval-escalation',
      cluster: req.cluster,
      message: `still waiting for approval of ${req.action} on ${req.cluster} (escalation ${level + 1}): ${req.summary}`,
    });
  }
  if (!decided()) await waitUntil(timeoutMs);
  if (!decided()) {
    state = { ...state, status: 'expired', decision: { decision: 'expired', by: null, identity: null, at: new Date().toISOString(), reason: 'nobody decided before the deadline' } };
    await notify({ severity: 'critical', event: 'approval-expired', cluster: req.cluster, message: `approval for ${req.action} on ${req.cluster} expired; aborting: ${req.summary}` });
  }
  upsertSearchAttributes([{ key: SA_AWAITING_APPROVAL, value: false }]);
  return state.decision as ApprovalDecision;
}

/** The run's requester: the name it was started with and the identity of the client that started it. */
export async function requesterOf(name: string | undefined): Promise<Requester> {
  const ids = await gate.callerIdentities({});
  return { name: name ?? 'unknown', identity: ids.starter };
}

/** What the worker's config says for an action (approvers, self-approval), asked now. */
export function approvalPolicy(cluster: string, action: ApprovalAction) {
  return gate.approvalPolicy({ cluster, action });
}

/** The Temporal identity of the client that sent an Update (and the run's starter), read from the history. */
export function updateCaller(updateId: string) {
  return gate.callerIdentities({ updateId });
}
