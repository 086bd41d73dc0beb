/** Notifications: a log line always; webhooks per config (severity filter, cooldown per webhook). */
import { z } from 'zod';
import { accept, currentRun } from './context';
import type { ActivityDeps } from './deps';
import { cluster } from './schemas';

const NotifyInput = z.strictObject({
  severity: z.enum(['info', 'warning', 'critical']),
  event: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/),
  cluster,
  message: z.string().max(10_000),
});

export function createNotifyActivities(deps: ActivityDeps) {
  return {
    /** A failed delivery fails the attempt; the retry reaches only the webhooks still missing it. */
    async notify(raw: z.input<typeof NotifyInput>): Promise<void> {
      const input = accept(NotifyInput, raw, 'notify');
      await deps.notifier.send({ ...input, workflowId: currentRun().workflowId });
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
