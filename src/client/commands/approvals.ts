/** dbops approvals …: what waits for a person, and the decision (the worker checks who may decide). */
import type { Command } from 'commander';
import { approvalState, decide, listPendingApprovals } from '../restores';
import { configOf, io, jsonWanted, required, withClient } from './shared';

export function registerApprovals(program: Command): void {
  const approvals = program.command('approvals').description('runs waiting for a person, and their decisions');

  approvals
    .command('list')
    .description('every run waiting for an approval')
    .action(async (_o: unknown, command: Command) => {
      await withClient(configOf(command), async (client) => {
        const pending = await listPendingApprovals(client);
        if (jsonWanted(command)) io.out(JSON.stringify(pending, null, 2));
        else if (pending.length === 0) io.out('nothing waits for an approval');
        else for (const p of pending) io.out(`${p.workflowId}  ${p.state?.action ?? '?'} on ${p.state?.cluster ?? '?'}: ${p.state?.summary ?? ''}  (approvers: ${p.state?.approvers.join(', ') ?? '?'}; deadline ${p.state?.deadline ?? '?'})`);
      });
    });

  approvals
    .command('show')
    .description('what a run waits for, and what was decided or refused')
    .argument('<workflowId>')
    .action(async (workflowId: string, _o: unknown, command: Command) => {
      await withClient(configOf(command), async (client) => {
        const state = await approvalState(client, workflowId);
        io.out(
          jsonWanted(command)
            ? JSON.stringify(state, null, 2)
            : state
              ? `${state.action} on ${state.cluster}: ${state.status}; ${state.summary}; approvers ${state.approvers.join(', ')}; deadline ${state.deadline}${state.decision ? `; ${state.decision.decision} by ${state.decision.by ?? '-'}: ${state.decision.reason ?? ''}` : ''}`
              : 'this run has not asked for an approval',
        );
      });
    });

  for (const decision of ['approve', 'reject'] as const) {
    approvals
      .command(decision)
      .description(`${decision} a waiting run (refused at once when you may not decide: not an approver, the requester, already decided)`)
      .argument('<workflowId>')
      .requiredOption('--as <name>', 'who decides')
      .requiredOption('--reason <text>', 'why (recorded)')
      .addHelpText('after', `\nExample:\n  dbops approvals ${decision} restore-table/shop/shop/20261122T140306.123Z --as alice --reason INC-42`)
      .action(async (workflowId: string, options: { as: string; reason: string }, command: Command) => {
        await withClient(configOf(command), async (client) => {
          const state = await decide(client, workflowId, decision, required(options.as, '--as'), required(options.reason, '--reason'));
          io.out(jsonWanted(command) ? JSON.stringify(state, null, 2) : `${state.status} by ${state.decision?.by}: ${state.decision?.reason}`);
        });
      });
  }
}
