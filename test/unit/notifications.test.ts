import {
  NotificationEventSchema,
  NotificationsConfigSchema,
  SLACK_COLORS,
  cooldownDecision,
  cooldownKey,
  cooldownMsOf,
  displayWebhookUrl,
  genericPayload,
  maskWebhookUrl,
  payloadFor,
  slackPayload,
  webhookLastSent,
  webhookStateKey,
  webhooksFor,
  type NotificationEvent,
} from '../../src/domain/notifications';

const MIN = 60_000;
const event = (extra: Partial<NotificationEvent> = {}): NotificationEvent => ({
  severity: 'warning',
  event: 'backup-failed',
  cluster: 'shop',
  message: 'dumpFull: mariadb-dump exited with 2',
  at: '2026-11-22T14:00:00.000Z',
  ...extra,
});

describe('payloads', () => {
  test('generic JSON: the event and its source; workflowId only when there is one', () => {
    expect(genericPayload(event({ workflowId: 'backup-full/shop/20261122T140000.000Z' }))).toEqual({
      source: 'dbops',
      severity: 'warning',
      event: 'backup-failed',
      cluster: 'shop',
      message: 'dumpFull: mariadb-dump exited with 2',
      workflowId: 'backup-full/shop/20261122T140000.000Z',
      at: '2026-11-22T14:00:00.000Z',
    });
    const without = genericPayload(event());
    expect('workflowId' in without).toBe(false);
    expect(JSON.parse(JSON.stringify(without))).toEqual(without);
    expect(NotificationEventSchema.parse(event())).toEqual(event());
    expect(NotificationEventSchema.safeParse({ ...event(), severity: 'fatal' }).success).toBe(false);
  });

  test('Slack: text plus a coloured attachment with blocks; control characters escaped', () => {
    const p = slackPayload(event({ severity: 'critical', message: 'gap: binlog <000042> purged & lost', workflowId: 'backup-incremental/shop/x' }));
    expect(p.text).toBe(':rotating_light: [CRITICAL] backup-failed on shop: gap: binlog &lt;000042&gt; purged &amp; lost');
    expect(p.attachments).toEqual([
      {
        color: '#e01e5a',
        fallback: '[CRITICAL] backup-failed on shop: gap: binlog &lt;000042&gt; purged &amp; lost',
        blocks: [
          { type: 'header', text: { type: 'plain_text', text: '[CRITICAL] backup-failed on shop' } },
          { type: 'section', text: { type: 'mrkdwn', text: 'gap: binlog &lt;000042&gt; purged &amp; lost' } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: 'dbops · 2026-11-22T14:00:00.000Z · workflow `backup-incremental/shop/x`' }] },
        ],
      },
    ]);
    expect(new Set(Object.values(SLACK_COLORS)).size).toBe(3);
    expect(slackPayload(event({ severity: 'info' })).attachments[0]?.color).toBe(SLACK_COLORS.info);
    expect(slackPayload(event({ severity: 'warning' })).attachments[0]?.color).toBe(SLACK_COLORS.warning);
    // Slack's limits: header 150 characters, section 3000.
    const long = slackPayload(event({ event: 'e'.repeat(200), message: 'm'.repeat(5000) }));
    const blocks = long.attachments[0]!.blocks;
    expect(blocks[0]).toMatchObject({ type: 'header', text: { text: expect.stringMatching(/^.{149}…$/) } });
    expect(blocks[1]).toMatchObject({ type: 'section', text: { text: expect.stringMatching(/^m{2999}…$/) } });
    expect(long.text.length).toBe(3000);
  });

  test('payloadFor picks the webhook format', () => {
    expect(payloadFor({ format: 'json' }, event())).toEqual(genericPayload(event()));
    expect(payloadFor({ format: 'slack' }, event())).toEqual(slackPayload(event()));
  });
});

describe('cooldownDecision', () => {
  const now = new Date('2026-11-22T14:00:00.000Z');
  const ago = (minutes: number): string => new Date(now.getTime() - minutes * MIN).toISOString();
  const cooldown = 15 * MIN;

  test('first time: send; keyed by cluster, event and severity', () => {
    expect(cooldownDecision({}, event(), cooldown, now)).toEqual({ send: true, key: 'shop/backup-failed/warning', reason: 'first' });
    expect(cooldownKey('shop', 'backup-failed', 'critical')).toBe('shop/backup-failed/critical');
  });

  test('a repeat within the cooldown is held back until it ends; after it, sent', () => {
    const last = { 'shop/backup-failed/warning': ago(5) };
    expect(cooldownDecision(last, event(), cooldown, now)).toEqual({
      send: false,
      key: 'shop/backup-failed/warning',
      suppressedUntil: '2026-11-22T14:10:00.000Z',
      reason: 'cooldown',
    });
    expect(cooldownDecision({ 'shop/backup-failed/warning': ago(15) }, event(), cooldown, now)).toMatchObject({ send: true, reason: 'cooldown over' });
    // Other clusters and events have their own cooldowns.
    expect(cooldownDecision(last, event({ cluster: 'billing' }), cooldown, now)).toMatchObject({ send: true, reason: 'first' });
    expect(cooldownDecision(last, event({ event: 'chain-gap' }), cooldown, now)).toMatchObject({ send: true, reason: 'first' });
  });

  test('critical obeys the cooldown too', () => {
    const last = { 'shop/backup-failed/critical': ago(1) };
    expect(cooldownDecision(last, event({ severity: 'critical' }), cooldown, now)).toMatchObject({ send: false, suppressedUntil: '2026-11-22T14:14:00.000Z' });
  });

  test('an escalation is always sent, and a flapping state does not spam', () => {
    // warning 2 min ago, critical now: escalation, even though a critical went out 10 minutes ago.
    const last = { 'shop/backup-failed/critical': ago(10), 'shop/backup-failed/warning': ago(2) };
    expect(cooldownDecision(last, event({ severity: 'critical' }), cooldown, now)).toEqual({ send: true, key: 'shop/backup-failed/critical', reason: 'escalation' });
    expect(cooldownDecision({ 'shop/backup-failed/info': ago(1) }, event(), cooldown, now)).toMatchObject({ send: true, reason: 'escalation' });
    // De-escalation (critical last) is not an escalation: the warning's own cooldown applies.
    const down = { 'shop/backup-failed/critical': ago(1), 'shop/backup-failed/warning': ago(3) };
    expect(cooldownDecision(down, event(), cooldown, now)).toMatchObject({ send: false, reason: 'cooldown' });
    // Critical again right after: the last sent was critical, so its cooldown holds.
    expect(cooldownDecision(down, event({ severity: 'critical' }), cooldown, now)).toMatchObject({ send: false, reason: 'cooldown' });
  });

  test('per webhook: each webhook sees only its own deliveries, escalation included', () => {
    const state = {
      [webhookStateKey('ops', 'shop/backup-failed/critical')]: ago(1),
      [webhookStateKey('chat', 'shop/backup-failed/warning')]: ago(2),
      [webhookStateKey('ops', 'billing/backup-failed/critical')]: ago(1),
      'shop/backup-failed/critical': ago(1), // an unprefixed (older) entry belongs to no webhook
    };
    expect(webhookStateKey('ops', 'shop/backup-failed/critical')).toBe('ops/shop/backup-failed/critical');
    expect(webhookLastSent(state, 'ops', { cluster: 'shop', event: 'backup-failed' })).toEqual({ 'shop/backup-failed/critical': ago(1) });
    expect(webhookLastSent(state, 'chat', { cluster: 'shop', event: 'backup-failed' })).toEqual({ 'shop/backup-failed/warning': ago(2) });
    expect(webhookLastSent(state, 'pager', { cluster: 'shop', event: 'backup-failed' })).toEqual({});
    const critical = event({ severity: 'critical' });
    // ops already has it (a retry after another webhook failed): held back; chat escalates; pager never had it.
    expect(cooldownDecision(webhookLastSent(state, 'ops', critical), critical, cooldown, now)).toMatchObject({ send: false, reason: 'cooldown' });
    expect(cooldownDecision(webhookLastSent(state, 'chat', critical), critical, cooldown, now)).toMatchObject({ send: true, reason: 'escalation' });
    expect(cooldownDecision(webhookLastSent(state, 'pager', critical), critical, cooldown, now)).toMatchObject({ send: true, reason: 'first' });
  });

  test('an unreadable time counts as never sent; a zero cooldown always sends', () => {
    expect(cooldownDecision({ 'shop/backup-failed/warning': 'yesterday' }, event(), cooldown, now)).toMatchObject({ send: true, reason: 'first' });
    expect(cooldownDecision({ 'shop/backup-failed/warning': ago(0) }, event(), 0, now)).toMatchObject({ send: true, reason: 'cooldown over' });
  });
});

describe('NotificationsConfigSchema', () => {
  test('defaults: no webhooks, 15 minute cooldown; webhook defaults json and warning', () => {
    const c = NotificationsConfigSchema.parse({});
    expect(c).toEqual({ webhooks: [], cooldown: '15m' });
    expect(cooldownMsOf(c)).toBe(15 * MIN);
    const one = NotificationsConfigSchema.parse({ webhooks: [{ name: 'ops', url: 'https://hooks.example.com/dbops' }], cooldown: '1h' });
    expect(one.webhooks).toEqual([{ name: 'ops', url: 'https://hooks.example.com/dbops', format: 'json', minSeverity: 'warning' }]);
    expect(cooldownMsOf(one)).toBe(3_600_000);
  });

  test('refuses other URL schemes, unknown keys, bad durations and duplicate names', () => {
    const issues = (input: unknown): string[] => {
      const r = NotificationsConfigSchema.safeParse(input);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ webhooks: [{ name: 'a', url: 'ftp://example.com/x' }] })).toEqual(['webhooks.0.url: an http:// or https:// URL']);
    expect(issues({ webhooks: [{ name: 'a', url: 'not a url' }] })).toEqual(['webhooks.0.url: an http:// or https:// URL']);
    expect(issues({ webhooks: [{ name: 'a', url: 'http://localhost:9000/hook', format: 'teams' }] })[0]).toMatch(/^webhooks.0.format: /);
    expect(issues({ webhooks: [{ name: 'a', url: 'http://x.example', minSeverity: 'fatal' }] })[0]).toMatch(/^webhooks.0.minSeverity: /);
    expect(issues({ webhooks: [{ name: 'a', url: 'http://x.example', events: [] }] })[0]).toMatch(/^webhooks.0.events: /);
    expect(issues({ webhooks: [{ name: 'a', url: 'http://x.example', token: 'x' }] })[0]).toMatch(/Unrecognized key/);
    expect(issues({ cooldown: 'soon' })).toEqual(['cooldown: a duration such as 90s, 15m or 4h']);
    expect(issues({ webhooks: [{ name: 'a', url: 'http://x.example' }, { name: 'a', url: 'https://y.example' }] })).toEqual(['webhooks.1.name: duplicate webhook name "a"']);
  });

  test('a webhook URL is a literal http(s) URL or a reference to one: { env } or { file }', () => {
    const c = NotificationsConfigSchema.parse({
      webhooks: [
        { name: 'env', url: { env: 'DBOPS_SLACK_URL' }, format: 'slack' },
        { name: 'file', url: { file: '/run/secrets/ops-webhook' } },
        { name: 'literal', url: 'https://alerts.internal/dbops' },
      ],
    });
    expect(c.webhooks.map((w) => w.url)).toEqual([{ env: 'DBOPS_SLACK_URL' }, { file: '/run/secrets/ops-webhook' }, 'https://alerts.internal/dbops']);
    const issues = (url: unknown): string[] => {
      const r = NotificationsConfigSchema.safeParse({ webhooks: [{ name: 'a', url }] });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ env: '1-not-a-name' })).toEqual(['webhooks.0.url.env: an environment variable name']);
    expect(issues({ file: '' })).toEqual(['webhooks.0.url.file: a path to a file holding only the URL']);
    expect(issues({ token: 'x' })).toEqual(['webhooks.0.url: an http:// or https:// URL, or a reference: { env: VARIABLE } or { file: /path/to/secret }']);
    expect(issues({ env: 'A', file: '/x' })).toHaveLength(1);
    expect(issues(42)).toEqual(['webhooks.0.url: an http:// or https:// URL, or a reference: { env: VARIABLE } or { file: /path/to/secret }']);
    expect(issues(undefined)).toHaveLength(1);
  });

  test('a literal URL is shown as scheme://host/… only (the path and query carry the token); a reference as it is', () => {
    expect(maskWebhookUrl('https://hooks.slack.com/services/T000/B000/XXXXSECRET')).toBe('https://hooks.slack.com/…');
    expect(maskWebhookUrl('http://user:pass@127.0.0.1:9000/hook?token=abc#x')).toBe('http://127.0.0.1:9000/…');
    expect(maskWebhookUrl('HTTPS://Alerts.Internal')).toBe('https://alerts.internal/…');
    expect(maskWebhookUrl('not a url')).toBe('…');
    expect(displayWebhookUrl('https://hooks.slack.com/services/T000/B000/XXXXSECRET')).toBe('https://hooks.slack.com/…');
    expect(displayWebhookUrl({ env: 'DBOPS_SLACK_URL' })).toEqual({ env: 'DBOPS_SLACK_URL' });
    expect(displayWebhookUrl({ file: '/run/secrets/hook' })).toEqual({ file: '/run/secrets/hook' });
  });

  test('webhooksFor: severity at or above the webhook minimum, and its event list', () => {
    const c = NotificationsConfigSchema.parse({
      webhooks: [
        { name: 'pager', url: 'https://pager.example/hook', minSeverity: 'critical' },
        { name: 'chat', url: 'https://hooks.slack.com/services/T/B/X', format: 'slack', minSeverity: 'info' },
        { name: 'drills', url: 'https://drills.example/hook', events: ['drill-failed'] },
      ],
    });
    const names = (e: NotificationEvent): string[] => webhooksFor(c, e).map((w) => w.name);
    expect(names(event({ severity: 'info' }))).toEqual(['chat']);
    expect(names(event({ severity: 'warning' }))).toEqual(['chat']);
    expect(names(event({ severity: 'critical' }))).toEqual(['pager', 'chat']);
    expect(names(event({ severity: 'warning', event: 'drill-failed' }))).toEqual(['chat', 'drills']);
    expect(names(event({ severity: 'info', event: 'drill-failed' }))).toEqual(['chat']);
  });
});
