/**
 * The notifier against loopback HTTP receivers and a temp repository: cooldown state per
 * webhook (a retry after one webhook failed reaches only that one), URL references
 * resolved at send time, and no URL in errors or log lines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { LocalStorage } from '../../src/repository/storage';
import { Notifier } from '../../src/notify/notifier';
import { ConfigSchema, type DbopsConfig } from '../../src/config/schema';

let server: Server;
let port = 0;
let dir = '';
const received: Array<{ path: string; event: unknown }> = [];
/** Paths that answer 500 while listed. */
const failing = new Set<string>();

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const url = req.url ?? '';
      if (failing.has(url)) {
        res.writeHead(500).end();
        return;
      }
      const body = JSON.parse(text) as { event?: unknown; text?: unknown };
      received.push({ path: url, event: body.event ?? body.text });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'dbops-notifier-'));
  received.length = 0;
  failing.clear();
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  delete process.env.DBOPS_TEST_HOOK_URL;
});

function setup(webhooks: unknown[]): { notifier: Notifier; logs: string[] } {
  const config: DbopsConfig = ConfigSchema.parse({
    repository: { path: dir },
    clusters: [{ name: 'shop', host: '127.0.0.1', user: 'dbops' }],
    notifications: { cooldown: '1h', webhooks },
  });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  return { notifier: new Notifier(config, pino({ level: 'trace' }, stream), new LocalStorage(config.repository.path!)), logs };
}

const failure = { severity: 'critical' as const, event: 'backup-failed', cluster: 'shop', message: 'dump failed' };

test('a retry after one webhook failed reaches only the webhooks still missing the event', async () => {
  process.env.DBOPS_TEST_HOOK_URL = `http://127.0.0.1:${port}/b/SECRET-TOKEN`;
  const { notifier, logs } = setup([
    { name: 'a', url: `http://127.0.0.1:${port}/a`, minSeverity: 'info' },
    { name: 'b', url: { env: 'DBOPS_TEST_HOOK_URL' }, format: 'slack', minSeverity: 'info' },
  ]);
  failing.add('/b/SECRET-TOKEN');
  const first = notifier.send(failure);
  await expect(first).rejects.toThrow('notification backup-failed not delivered to b: HTTP 500 (delivered to a)');
  await first.catch((error: Error) => expect(error.message).not.toContain('SECRET-TOKEN'));
  expect(received.map((r) => r.path)).toEqual(['/a']);

  // The activity's retry: a already has it, b gets it now.
  failing.clear();
  expect(await notifier.send(failure)).toEqual({ sent: ['b'], held: ['a'], suppressedUntil: null });
  expect(received.map((r) => r.path)).toEqual(['/a', '/b/SECRET-TOKEN']);

  // Within the cooldown: nobody again; an escalation is judged per webhook.
  const again = await notifier.send(failure);
  expect(again).toMatchObject({ sent: [], held: ['a', 'b'] });
  expect(again.suppressedUntil).toMatch(/^\d{4}-/);
  expect(received).toHaveLength(2);
  expect(logs.join('')).not.toContain('SECRET-TOKEN');
  expect(logs.join('')).not.toContain(`127.0.0.1:${port}`);
});

test('escalation per webhook: a webhook that last got a warning gets the critical at once', async () => {
  const { notifier } = setup([
    { name: 'a', url: `http://127.0.0.1:${port}/a`, minSeverity: 'warning' },
    { name: 'p', url: `http://127.0.0.1:${port}/p`, minSeverity: 'critical' },
  ]);
  await notifier.send({ ...failure, severity: 'warning' });
  expect(received.map((r) => r.path)).toEqual(['/a']);
  expect((await notifier.send(failure)).sent).toEqual(['a', 'p']);
  expect((await notifier.send({ ...failure, severity: 'warning' })).sent).toEqual([]);
});

test('references are resolved at send time; a missing one fails that webhook without naming a URL', async () => {
  const file = path.join(dir, 'hook.url');
  writeFileSync(file, `http://127.0.0.1:${port}/f/TOKEN-IN-FILE\n`, { mode: 0o600 });
  const { notifier } = setup([
    { name: 'f', url: { file } },
    { name: 'e', url: { env: 'DBOPS_TEST_HOOK_URL' } },
  ]);
  await expect(notifier.send(failure)).rejects.toThrow(/^notification backup-failed not delivered to e: notifications\.webhooks\[e\]\.url: environment variable DBOPS_TEST_HOOK_URL is not set on the worker \(delivered to f\)$/);
  expect(received.map((r) => r.path)).toEqual(['/f/TOKEN-IN-FILE']);

  process.env.DBOPS_TEST_HOOK_URL = 'ftp://127.0.0.1/x-TOKEN';
  const bad = notifier.send(failure);
  await expect(bad).rejects.toThrow('e: notifications.webhooks[e].url: the referenced URL is not http:// or https://');
  await bad.catch((error: Error) => expect(error.message).not.toContain('TOKEN'));

  // Nothing listens on this port: the connection error names no URL path.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  process.env.DBOPS_TEST_HOOK_URL = `http://127.0.0.1:${closedPort}/x/TOKEN`;
  const refused = notifier.send(failure);
  await expect(refused).rejects.toThrow(/not delivered to e: /);
  await refused.catch((error: Error) => expect(error.message).not.toContain('TOKEN'));
});
