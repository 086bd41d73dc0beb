/**
 * Live progress for `--wait` on a terminal: the running activity and what its last
 * heartbeat said (phase, bytes), redrawn in place on stderr. Quiet with --json or when
 * stderr is not a terminal (DBOPS_PROGRESS=1 forces it, e.g. for logs in CI).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

export function progressWanted(json: boolean): boolean {
  if (json) return false;
  return process.env.DBOPS_PROGRESS === '1' || process.stderr.isTTY === true;
}

export async function describeProgress(handle: WorkflowHandle): Promise<string | null> {
  const d = await handle.describe();
  const pending = d.raw.pendingActivities?.[0];
  if (!pending) return null;
  const name = pending.activityType?.name ?? 'activity';
  const payload = pending.heartbeatDetails?.payloads?.[0];
  let text = '';
  if (payload) {
    const details = defaultPayloadConverter.fromPayload(payload) as { text?: string } | string | null;
    text = typeof details === 'string' ? details : (details?.text ?? '');
  }
  const attempt = (pending.attempt ?? 1) > 1 ? ` (attempt ${pending.attempt})` : '';
  return `${name}${attempt}${text ? `: ${text}` : ''}`;
}

export async function resultWithProgress<T>(handle: WorkflowHandle, show: boolean): Promise<T> {
  const result = handle.result() as Promise<T>;
  if (!show) return result;
  let finished = false;
  const settle = result.then(
    () => (finished = true),
    () => (finished = true),
  );
  let last = '';
  const tty = process.stderr.isTTY === true;
  while (!finished) {
    await Promise.race([settle, new Promise((r) => setTimeout(r, 1000))]);
    if (finished) break;
    const line = await describeProgress(handle).catch(() => null);
    if (line && line !== last) {
      process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
  }
  if (tty && last) process.stderr.write('\r\x1b[2K');
  return result;
}
