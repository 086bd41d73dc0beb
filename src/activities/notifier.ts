/**
 * Sends notifications: always a structured log line (`alert`, `severity`), and a POST to
 * every configured webhook that wants the event (generic JSON or Slack format). The same
 * cluster + event + severity is sent at most once per cooldown (seed 001); an escalation
 * to a higher severity always goes out. The cooldown state lives in the repository
 * (`.notifications.json`) so that it survives restarts and is shared by workers.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { DbopsConfig } from '../config/schema';
import { cooldownDecision, cooldownMsOf, payloadFor, webhooksFor, type NotificationEvent } from '../domain/notifications';
import { writeFileAtomic } from './repository';

export interface NotifyOutcome {
  sent: string[];
  suppressedUntil: string | null;
}

export class Notifier {
  private readonly stateFile: string;

  constructor(
    private readonly config: DbopsConfig,
    private readonly logger: Logger,
  ) {
    this.stateFile = path.join(config.repository.path, '.notifications.json');
  }

  private async lastSent(): Promise<Record<string, string>> {
    try {
      const parsed = JSON.parse(await readFile(this.stateFile, 'utf8')) as { lastSent?: Record<string, string> };
      return parsed.lastSent ?? {};
    } catch {
      return {};
    }
  }

  async send(input: Omit<NotificationEvent, 'at'> & { at?: string }): Promise<NotifyOutcome> {
    const e: NotificationEvent = { ...input, at: input.at ?? new Date().toISOString() };
    const level = e.severity === 'critical' ? 'error' : e.severity === 'warning' ? 'warn' : 'info';
    this.logger[level]({ alert: e.event, severity: e.severity, cluster: e.cluster, workflowId: e.workflowId }, e.message);
    const targets = webhooksFor(this.config.notifications, e);
    if (targets.length === 0) return { sent: [], suppressedUntil: null };
    const state = await this.lastSent();
    const decision = cooldownDecision(state, e, cooldownMsOf(this.config.notifications), new Date());
    if (!decision.send) {
      this.logger.info({ alert: e.event, cluster: e.cluster, until: decision.suppressedUntil }, 'notification held back by the cooldown');
      return { sent: [], suppressedUntil: decision.suppressedUntil ?? null };
    }
    const failures: string[] = [];
    for (const w of targets) {
      try {
        const res = await fetch(w.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(payloadFor(w, e)),
          signal: AbortSignal.timeout(10_000),
        });
        if (!res.ok) failures.push(`${w.name}: HTTP ${res.status}`);
      } catch (error) {
        // Never log the URL: Slack webhook URLs carry a secret token.
        failures.push(`${w.name}: ${(error as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`notification ${e.event} not delivered to ${failures.join('; ')}`);
    await writeFileAtomic(this.stateFile, JSON.stringify({ lastSent: { ...(await this.lastSent()), [decision.key]: e.at } }, null, 2) + '\n');
    return { sent: targets.map((w) => w.name), suppressedUntil: null };
  }
}
