/**
 * Sends notifications: always a structured log line (`alert`, `severity`), and a POST to
 * every configured webhook that wants the event (generic JSON or Slack format). The same
 * cluster + event + severity is sent at most once per cooldown to each webhook;
 * an escalation to a higher severity always goes out. The cooldown state lives in the
 * repository (`.notifications.json`) so that it survives restarts and is shared by workers.
 *
 * Each webhook keeps its own state, recorded right after its own delivery: when one webhook
 * fails, send() throws at the end (so the activity is retried), and the retry reaches only
 * the webhooks that have not had the event yet.
 *
 * Webhook URLs are secrets (a Slack URL carries its token): a reference ({ env } / { file })
 * is resolved here, at send time, and no URL ever reaches a log line or an error message.
 */
import type { Logger } from 'pino';
import type { DbopsConfig } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import {
  cooldownDecision,
  cooldownMsOf,
  payloadFor,
  webhookLastSent,
  webhookStateKey,
  webhooksFor,
  WEBHOOK_URL_PROTOCOL,
  type NotificationEvent,
  type WebhookConfig,
} from '../domain/notifications';
import { layout } from '../repository/layout';
import type { Storage } from '../repository/storage';

export interface NotifyOutcome {
  /** Webhooks that received the event now. */
  sent: string[];
  /** Webhooks the cooldown held back (they already have it). */
  held: string[];
  /** When nothing was sent because of the cooldown: the earliest time it would be sent again. */
  suppressedUntil: string | null;
}

/** The URL to POST to; a reference is resolved now. Errors never contain the URL. */
function webhookUrl(w: WebhookConfig): string {
  const field = `notifications.webhooks[${w.name}].url`;
  const url = typeof w.url === 'string' ? w.url : resolveSecret(w.url, field);
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new Error(`${field}: the referenced value is not a URL`);
  }
  if (!WEBHOOK_URL_PROTOCOL.test(parsed.protocol.replace(/:$/, ''))) throw new Error(`${field}: the referenced URL is not http:// or https://`);
  return parsed.toString();
}

export class Notifier {
  /** Serialises read-modify-write of the state within this process. */
  private stateWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: DbopsConfig,
    private readonly logger: Logger,
    /** Where the cooldown state lives (the repository), so it survives restarts and is shared by workers. */
    private readonly storage: Storage,
  ) {}

  private async lastSent(): Promise<Record<string, string>> {
    try {
      const parsed = JSON.parse((await this.storage.readText(layout.notificationState())) ?? '{}') as { lastSent?: Record<string, string> };
      return parsed.lastSent ?? {};
    } catch {
      return {};
    }
  }

  /** Records one webhook's delivery (re-reads the file, so other deliveries are kept). */
  private record(key: string, at: string): Promise<void> {
    const write = this.stateWrite.then(async () => {
      const lastSent = { ...(await this.lastSent()), [key]: at };
      await this.storage.writeText(layout.notificationState(), JSON.stringify({ lastSent }, null, 2) + '\n');
    });
    this.stateWrite = write.catch(() => undefined);
    return write;
  }

  /** POSTs the event to one webhook; throws a message naming the webhook, never its URL. */
  private async post(w: WebhookConfig, e: NotificationEvent): Promise<void> {
    const url = webhookUrl(w);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payloadFor(w, e)),
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      const detail = [(error as Error).message, cause instanceof Error ? cause.message : ''].filter((x) => x !== '').join(': ');
      throw new Error(detail.split(url).join('<url>'));
    }
  }

  async send(input: Omit<NotificationEvent, 'at'> & { at?: string }): Promise<NotifyOutcome> {
    const e: NotificationEvent = { ...input, at: input.at ?? new Date().toISOString() };
    const level = e.severity === 'critical' ? 'error' : e.severity === 'warning' ? 'warn' : 'info';
    this.logger[level]({ alert: e.event, severity: e.severity, cluster: e.cluster, workflowId: e.workflowId }, e.message);
    const targets = webhooksFor(this.config.notifications, e);
    if (targets.length === 0) return { sent: [], held: [], suppressedUntil: null };
    const state = await this.lastSent();
    const cooldownMs = cooldownMsOf(this.config.notifications);
    const now = new Date();
    const sent: string[] = [];
    const held: Array<{ name: string; until: string }> = [];
    const failures: string[] = [];
    for (const w of targets) {
      // The severity escalation rule, seen from this webhook's own deliveries.
      const decision = cooldownDecision(webhookLastSent(state, w.name, e), e, cooldownMs, now);
      if (!decision.send) {
        held.push({ name: w.name, until: decision.suppressedUntil ?? e.at });
        continue;
      }
      try {
        await this.post(w, e);
      } catch (error) {
        failures.push(`${w.name}: ${(error as Error).message}`);
        continue;
      }
      sent.push(w.name);
      try {
        await this.record(webhookStateKey(w.name, decision.key), e.at);
      } catch (error) {
        // Delivered; a retry may send it to this webhook once more, which beats losing another one.
        this.logger.warn({ alert: e.event, cluster: e.cluster, webhook: w.name, err: error }, 'could not record a delivered notification');
      }
    }
    if (held.length > 0) {
      this.logger.info({ alert: e.event, cluster: e.cluster, held: held.map((h) => `${h.name} until ${h.until}`) }, 'notification held back by the cooldown');
    }
    if (failures.length > 0) {
      throw new Error(`notification ${e.event} not delivered to ${failures.join('; ')}${sent.length > 0 ? ` (delivered to ${sent.join(', ')})` : ''}`);
    }
    const suppressedUntil = sent.length === 0 && held.length > 0 ? held.map((h) => h.until).sort()[0] ?? null : null;
    return { sent, held: held.map((h) => h.name), suppressedUntil };
  }
}
