/**
 * Durations as the config and job definitions write them ("500ms", "90s", "15m", "4h",
 * "7d"): one pattern, one zod schema, one parser for every place that takes one. Pure.
 */
import { z } from 'zod';

export const DURATION_PATTERN = /^\d+\s*(ms|s|m|h|d|seconds?|minutes?|hours?|days?)$/;

export function durationSchema(example = 'a duration such as 90s, 15m or 4h') {
  return z.string().regex(DURATION_PATTERN, example);
}

export function durationSeconds(text: string): number {
  const m = /^(\d+)\s*(ms|s|m|h|d|seconds?|minutes?|hours?|days?)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  const n = Number(m[1]);
  const unit = m[2] as string;
  if (unit === 'ms') return n / 1000;
  if (unit.startsWith('s')) return n;
  if (unit.startsWith('m')) return n * 60;
  if (unit.startsWith('h')) return n * 3600;
  return n * 86400;
}

export function durationMs(text: string): number {
  return Math.round(durationSeconds(text) * 1000);
}
