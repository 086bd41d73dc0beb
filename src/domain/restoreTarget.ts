/**
 * Where a restore should stop. Pure: parsed in the CLI for instant feedback and again in
 * the workflow (inputs are re-validated at every boundary).
 *
 *   2026-11-22T14:03:06Z      the state after every transaction committed up to the end of
 *                             that second (UTC; binlog times have second precision)
 *   binlog:binlog.000042:1234 stop before the event at that position
 *   gtid:0-1-2030             stop after the transaction with that GTID (MariaDB)
 *   gtid:<uuid>:1-42          the state after exactly that GTID set (MySQL; uuid:42 = uuid:1-42)
 *   latest                    everything the backups hold
 *   before-matching           just before the first statement matching a pattern
 *                             (optionally after a time): the accidental DELETE
 */
import { RE2JS } from 're2js';
import { GtidError, parseGtidTarget } from './gtid';
export type RestoreTarget =
  | { kind: 'time'; at: string }
  | { kind: 'position'; file: string; position: number }
  | { kind: 'gtid'; gtid: string }
  | { kind: 'latest' }
  | { kind: 'beforeMatching'; pattern: string; after: string | null };

export class TargetError extends Error {}

const ISO_UTC = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|\+00:00)$/;

export function parseUtcTime(text: string, field: string): string {
  const m = ISO_UTC.exec(text.trim());
  const at = m ? Date.parse(`${m[1]}T${m[2]}Z`) : NaN;
  if (!m || Number.isNaN(at)) {
    throw new TargetError(`${field}: "${text}" is not an ISO-8601 UTC time; write it like 2026-11-22T14:03:06Z`);
  }
  return new Date(at).toISOString().replace('.000Z', 'Z');
}

export function parseTarget(text: string): RestoreTarget {
  const t = text.trim();
  if (t === 'latest') return { kind: 'latest' };
  if (t.startsWith('binlog:')) {
    const m = /^binlog:([A-Za-z0-9_.-]+\.\d+):(\d+)$/.exec(t);
    if (!m?.[1] || !m[2]) throw new TargetError(`--to: "${text}" is not binlog:<file>:<position>, e.g. binlog:binlog.000042:1234`);
    return { kind: 'position', file: m[1], position: Number(m[2]) };
  }
  if (t.startsWith('gtid:')) {
    try {
      return { kind: 'gtid', gtid: parseGtidTarget(t.slice(5)).normalised };
    } catch (error) {
      const why = error instanceof GtidError ? `: ${error.message}` : '';
      throw new TargetError(
        `--to: "${text}" is not a GTID target${why}; write gtid:0-1-2030 (MariaDB: one GTID) or gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42 (MySQL: a GTID set)`,
      );
    }
  }
  return { kind: 'time', at: parseUtcTime(t, '--to') };
}

/**
 * Patterns run over every decoded line of the window: they use RE2's syntax and matching
 * (linear time, no backtracking), so no pattern can stall a restore. Case-insensitive.
 */
export function compilePattern(pattern: string): RE2JS {
  return RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
}

/** Why a --before-matching pattern cannot be used (null: it can). */
export function patternProblem(pattern: string): string | null {
  if (pattern.length > 500) return 'at most 500 characters';
  try {
    compilePattern(pattern);
    return null;
  } catch (error) {
    return `not a valid regular expression (RE2 syntax: no backreferences or lookaround): ${(error as Error).message}`;
  }
}

export function beforeMatching(pattern: string, after?: string): RestoreTarget {
  const problem = patternProblem(pattern);
  if (problem) throw new TargetError(`--before-matching: ${problem}`);
  return { kind: 'beforeMatching', pattern, after: after ? parseUtcTime(after, '--after') : null };
}

export function describeTarget(t: RestoreTarget): string {
  switch (t.kind) {
    case 'time':
      return `the end of ${t.at}`;
    case 'position':
      return `${t.file}:${t.position}`;
    case 'gtid':
      return `GTID ${t.gtid}`;
    case 'latest':
      return 'the latest backed-up point';
    default:
      return `just before the first statement matching /${t.pattern}/i${t.after ? ` after ${t.after}` : ''}`;
  }
}

/** mysqlbinlog --stop-datetime is exclusive: the end of second S is "stop at S+1". */
export function stopDatetimeFor(at: string): string {
  return new Date(Date.parse(at) + 1000).toISOString().slice(0, 19).replace('T', ' ');
}
