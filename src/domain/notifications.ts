/**
 * Notifications: what a webhook receives, which webhooks get an event, and when
 * a repeat is held back. Pure: an activity does the HTTP POST; the workflow decides.
 *
 * Cooldowns: the same cluster + event + severity is sent at most once per
 * cooldown, to each webhook (each keeps its own state). Critical events obey the cooldown
 * too, but an escalation (the last notification sent for that cluster + event had a lower
 * severity) is always sent at once.
 */
import { z } from 'zod';
import { durationMs, durationSchema } from './duration';

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export const SeveritySchema = z.enum(SEVERITIES);
export type Severity = z.infer<typeof SeveritySchema>;

export const NotificationEventSchema = z.strictObject({
  severity: SeveritySchema,
  /** A stable name such as "backup-failed", "chain-gap", "storage-high", "drill-failed". */
  event: z.string().min(1),
  cluster: z.string().min(1),
  message: z.string(),
  workflowId: z.string().min(1).optional(),
  /** ISO-8601 UTC. */
  at: z.string(),
});
export type NotificationEvent = z.infer<typeof NotificationEventSchema>;

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export interface GenericPayload {
  source: 'dbops';
  severity: Severity;
  event: string;
  cluster: string;
  message: string;
  workflowId?: string;
  at: string;
}

/** The `json` format: the event as it is, marked as coming from dbops. */
export function genericPayload(e: NotificationEvent): GenericPayload {
  const payload: GenericPayload = { source: 'dbops', severity: e.severity, event: e.event, cluster: e.cluster, message: e.message, at: e.at };
  if (e.workflowId !== undefined) payload.workflowId = e.workflowId;
  return payload;
}

export type SlackTextObject = { type: 'mrkdwn' | 'plain_text'; text: string };
export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string } }
  | { type: 'section'; text: SlackTextObject }
  | { type: 'context'; elements: SlackTextObject[] };

export interface SlackPayload {
  /** Shown in notifications and by clients that do not render blocks. */
  text: string;
  attachments: Array<{ color: string; fallback: string; blocks: SlackBlock[] }>;
}

/** Attachment bar colour per severity. */
export const SLACK_COLORS: Readonly<Record<Severity, string>> = {
  info: '#2eb67d',
  warning: '#ecb22e',
  critical: '#e01e5a',
};

const SLACK_ICONS: Readonly<Record<Severity, string>> = {
  info: ':information_source:',
  warning: ':warning:',
  critical: ':rotating_light:',
};

/** Slack's three control characters in mrkdwn and plain text. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The `slack` format: an incoming-webhook message with a coloured attachment. */
export function slackPayload(e: NotificationEvent): SlackPayload {
  const label = e.severity.toUpperCase();
  const headline = `[${label}] ${e.event} on ${e.cluster}`;
  const context = [`dbops`, e.at, ...(e.workflowId ? [`workflow \`${slackEscape(e.workflowId)}\``] : [])].join(' · ');
  return {
    text: clip(`${SLACK_ICONS[e.severity]} ${slackEscape(headline)}: ${slackEscape(e.message)}`, 3000),
    attachments: [
      {
        color: SLACK_COLORS[e.severity],
        fallback: clip(slackEscape(`${headline}: ${e.message}`), 3000),
        blocks: [
          // Slack limits: header 150 characters, section text 3000.
          { type: 'header', text: { type: 'plain_text', text: clip(headline, 150) } },
          { type: 'section', text: { type: 'mrkdwn', text: clip(slackEscape(e.message) || '(no message)', 3000) } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: clip(context, 3000) }] },
        ],
      },
    ],
  };
}

/** The key notifications are remembered under: cluster + event + severity. */
export function cooldownKey(cluster: string, event: string, severity: Severity): string {
  return `${cluster}/${event}/${severity}`;
}

export interface CooldownDecision {
  send: boolean;
  key: string;
  /** When held back: the earliest time the same notification is sent again. */
  suppressedUntil?: string;
  reason: 'first' | 'cooldown over' | 'escalation' | 'cooldown';
}

/**
 * Whether to send `e` now. `lastSent` maps cooldownKey(...) to the ISO time it was last
 * sent; the caller records `key` -> now when it sends.
 */
export function cooldownDecision(lastSent: Readonly<Record<string, string>>, e: NotificationEvent, cooldownMs: number, now: Date): CooldownDecision {
  const key = cooldownKey(e.cluster, e.event, e.severity);
  const nowMs = now.getTime();
  const sentAt = (severity: Severity): number | null => {
    const text = lastSent[cooldownKey(e.cluster, e.event, severity)];
    const ms = text === undefined ? NaN : Date.parse(text);
    return Number.isNaN(ms) ? null : ms;
  };

  // The most recent notification for this cluster + event, whatever its severity.
  let latest: { severity: Severity; at: number } | null = null;
  for (const severity of SEVERITIES) {
    const at = sentAt(severity);
    if (at !== null && (latest === null || at > latest.at || (at === latest.at && severityRank(severity) > severityRank(latest.severity)))) {
      latest = { severity, at };
    }
  }
  if (latest && severityRank(latest.severity) < severityRank(e.severity)) return { send: true, key, reason: 'escalation' };

  const own = sentAt(e.severity);
  if (own === null) return { send: true, key, reason: 'first' };
  if (nowMs - own >= cooldownMs) return { send: true, key, reason: 'cooldown over' };
  return { send: false, key, suppressedUntil: new Date(own + cooldownMs).toISOString(), reason: 'cooldown' };
}


/**
 * A webhook URL is a secret (a Slack incoming-webhook URL carries its token): the config
 * may name it by reference, resolved by the notifier when it sends. Same shape as the
 * config's SecretRefSchema (the domain does not import the config).
 */
export const WebhookUrlRefSchema = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
    z.strictObject({ file: z.string().min(1, 'a path to a file holding only the URL') }),
  ],
  { error: 'expected { env: VARIABLE } or { file: /path/to/secret }' },
);
export type WebhookUrlRef = z.infer<typeof WebhookUrlRefSchema>;

export const WEBHOOK_URL_PROTOCOL = /^https?$/;

export const WebhookUrlSchema = z.union([z.url({ protocol: WEBHOOK_URL_PROTOCOL, error: 'an http:// or https:// URL' }), WebhookUrlRefSchema], {
  error: (issue) =>
    typeof issue.input === 'string' ? 'an http:// or https:// URL' : 'an http:// or https:// URL, or a reference: { env: VARIABLE } or { file: /path/to/secret }',
});
export type WebhookUrl = z.infer<typeof WebhookUrlSchema>;

/**
 * A literal webhook URL as it may be shown (config check): scheme and host only, since the
 * path and query of a Slack or similar URL are the secret. `<scheme>://<host>/…`
 */
export function maskWebhookUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol.replace(/:$/, '')}://${u.host}/…`;
  } catch {
    return '…';
  }
}

/** The webhook's URL for display: a literal one masked, a reference as it is (it names no secret). */
export function displayWebhookUrl(url: WebhookUrl): string | WebhookUrlRef {
  return typeof url === 'string' ? maskWebhookUrl(url) : url;
}

export const WebhookSchema = z.strictObject({
  name: z.string().min(1),
  /** A literal http(s) URL, or { env: VAR } / { file: PATH } holding it (preferred: the URL is a secret). */
  url: WebhookUrlSchema,
  format: z.enum(['json', 'slack']).default('json'),
  /** Events below this severity are not sent to this webhook. */
  minSeverity: SeveritySchema.default('warning'),
  /** Only these events (default: all). */
  events: z.array(z.string().min(1)).min(1).optional(),
});
export type WebhookConfig = z.output<typeof WebhookSchema>;

export const NotificationsConfigSchema = z
  .strictObject({
    webhooks: z.array(WebhookSchema).default([]),
    /** The same cluster + event + severity at most once per cooldown. */
    cooldown: durationSchema().default('15m'),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.webhooks.forEach((w, index) => {
      if (seen.has(w.name)) ctx.addIssue({ code: 'custom', path: ['webhooks', index, 'name'], message: `duplicate webhook name "${w.name}"` });
      seen.add(w.name);
    });
  });
export type NotificationsConfig = z.output<typeof NotificationsConfigSchema>;

/** The webhooks that want this event (severity at or above theirs, event in their list). */
export function webhooksFor(config: Pick<NotificationsConfig, 'webhooks'>, e: NotificationEvent): WebhookConfig[] {
  return config.webhooks.filter(
    (w) => severityRank(e.severity) >= severityRank(w.minSeverity) && (w.events === undefined || w.events.includes(e.event)),
  );
}

/** The payload a webhook receives for an event, in its format. */
export function payloadFor(webhook: Pick<WebhookConfig, 'format'>, e: NotificationEvent): GenericPayload | SlackPayload {
  return webhook.format === 'slack' ? slackPayload(e) : genericPayload(e);
}

/**
 * Cooldown state is kept per webhook: a webhook that already got an event is not sent it
 * again when another webhook failed and the notification is retried. The state file maps
 * webhookStateKey(webhook, cooldownKey(...)) to when it was sent.
 */
export function webhookStateKey(webhook: string, key: string): string {
  return `${webhook}/${key}`;
}

/** One webhook's view of the state, keyed like cooldownDecision expects (this cluster + event, every severity). */
export function webhookLastSent(state: Readonly<Record<string, string>>, webhook: string, e: Pick<NotificationEvent, 'cluster' | 'event'>): Record<string, string> {
  const view: Record<string, string> = {};
  for (const severity of SEVERITIES) {
    const key = cooldownKey(e.cluster, e.event, severity);
    const at = state[webhookStateKey(webhook, key)];
    if (at !== undefined) view[key] = at;
  }
  return view;
}

export function cooldownMsOf(config: Pick<NotificationsConfig, 'cooldown'>): number {
  return durationMs(config.cooldown);
}
