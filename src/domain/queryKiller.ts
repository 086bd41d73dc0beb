/**
 * The slow-query killer's decisions, pure: which sessions of a processlist are victims
 * under a policy (pt-kill's --busy-time, --match-*, --ignore-*, --victims), which may never
 * be (replication, the server's own threads, dbops's accounts, the killer itself, DDL unless
 * allowed), the digest a query is recorded under (its literals replaced, so neither values
 * nor secrets reach a report or a workflow history), and the run's report and alert.
 */
import { z } from 'zod';
import type { Severity } from './notifications';

/** One session as the worker read it from the server. `info` never leaves the activity that read it. */
export interface ProcessRow {
  id: number;
  user: string;
  host: string;
  db: string | null;
  command: string;
  timeSeconds: number;
  state: string | null;
  info: string | null;
  /** MariaDB's QUERY_ID: `KILL QUERY ID` stops exactly this statement. */
  queryId: number | null;
  rowsExamined: number | null;
}

/** A pattern per processlist column; a session matches when every given pattern does. */
export const SessionPatternSchema = z.strictObject({
  user: z.string().min(1).max(500).optional(),
  host: z.string().min(1).max(500).optional(),
  db: z.string().min(1).max(500).optional(),
  command: z.string().min(1).max(500).optional(),
  info: z.string().min(1).max(500).optional(),
});
export type SessionPattern = z.infer<typeof SessionPatternSchema>;
const PATTERN_FIELDS = ['user', 'host', 'db', 'command', 'info'] as const;

/** Every pattern of a policy compiles, else the field and the fix are named. */
export function checkPatterns(pattern: SessionPattern, ctx: z.RefinementCtx, at: Array<string | number>): void {
  for (const field of PATTERN_FIELDS) {
    const source = pattern[field];
    if (source === undefined) continue;
    try {
      new RegExp(source, 'i');
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: [...at, field], message: `not a regular expression (${(error as Error).message}); write it as JavaScript's RegExp reads it, e.g. "^report_"` });
    }
  }
}

export const KILL_MODES = ['query', 'connection'] as const;
export type KillMode = (typeof KILL_MODES)[number];

export interface KillPolicy {
  /** A statement is a victim once it has run this long. */
  busySeconds: number;
  match: SessionPattern;
  ignore: SessionPattern[];
  /** ALTER, CREATE, DROP, RENAME, TRUNCATE, OPTIMIZE... are spared unless this is set. */
  killDdl: boolean;
  /** At most this many kills per run, the longest-running first. */
  maxPerRun: number;
  mode: KillMode;
  dryRun: boolean;
}

/** Why a session was not a victim (counted in the run's record). */
export const SPARED = ['not-busy', 'replication', 'system', 'dbops', 'self', 'ddl', 'no-match', 'ignored', 'over-cap'] as const;
export type Spared = (typeof SPARED)[number];

/** A chosen session, as the workflow and the report see it: no query text, its digest instead. */
export const VictimSchema = z.strictObject({
  id: z.number().int().positive(),
  queryId: z.number().int().nonnegative().nullable(),
  user: z.string().max(200),
  host: z.string().max(300),
  db: z.string().max(200).nullable(),
  command: z.string().max(64),
  timeSeconds: z.number().int().nonnegative(),
  rowsExamined: z.number().int().nonnegative().nullable(),
  digest: z.string().regex(/^[0-9a-f]{16}$/),
  /** The statement with every literal replaced by ?, cut to 300 characters. */
  digestText: z.string().max(300),
});
export type Victim = z.infer<typeof VictimSchema>;

/** Replication and the server's own threads: never touched, whatever the policy says. */
const REPLICATION_COMMANDS = new Set(['binlog dump', 'binlog dump gtid', 'slave_io', 'slave_sql', 'slave_worker', 'register slave', 'table dump']);
const SYSTEM_USERS = new Set(['system user', 'event_scheduler', 'unauthenticated user']);
const DDL = /^(alter|create|drop|rename|truncate|optimize|analyze|repair|grant|revoke|flush|lock|unlock|install|uninstall)\b/i;

/** Leading comments and blanks, so "/* hint *\/ ALTER ..." is still DDL. */
function statementHead(sql: string): string {
  let s = sql.trimStart();
  for (;;) {
    if (s.startsWith('/*')) {
      const end = s.indexOf('*/');
      if (end === -1) return '';
      s = s.slice(end + 2).trimStart();
    } else if (s.startsWith('--') || s.startsWith('#')) {
      const end = s.indexOf('\n');
      if (end === -1) return '';
      s = s.slice(end + 1).trimStart();
    } else return s;
  }
}

export function isDdl(sql: string): boolean {
  return DDL.test(statementHead(sql));
}

function matches(pattern: SessionPattern, row: ProcessRow): boolean {
  const value = (field: (typeof PATTERN_FIELDS)[number]): string => {
    if (field === 'db') return row.db ?? '';
    if (field === 'info') return row.info ?? '';
    if (field === 'host') return row.host.replace(/:\d+$/, ''); // the client's port changes per connection
    return row[field];
  };
  return PATTERN_FIELDS.every((field) => pattern[field] === undefined || new RegExp(pattern[field] as string, 'i').test(value(field)));
}

/**
 * A statement's digest: string and numeric literals, hex and bit values, and IN-lists of
 * them become ?, comments go, whitespace collapses, case folds outside names. Two runs of
 * the same query with other values share it.
 */
export function digestOf(sql: string): { digest: string; text: string } {
  const normalized = maskLiterals(statementHead(sql).replace(/\b0x[0-9a-f]+\b|\b0b[01]+\b|\bx'[0-9a-f]*'|\bb'[01]*'/gi, '?'))
    .replace(/(?<![\w`$])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w`$])/gi, '?')
    .replace(/\(\s*\?(?:\s*,\s*\?)*\s*\)/g, '(?)')
    .replace(/\s+/g, ' ')
    .trim();
  const folded = normalized.replace(/`(?:[^`]|``)*`|[^`]+/g, (part) => (part.startsWith('`') ? part : part.toLowerCase()));
  return { digest: fnv64(folded), text: folded.length > 300 ? folded.slice(0, 299) + '…' : folded };
}

/**
 * One left-to-right pass: quoted strings become ?, comments a space, `names` stay as they
 * are (a quote inside one is no string). Anything left unclosed ends the text. A backslash
 * before a quote reads one way by default and another under NO_BACKSLASH_ESCAPES, so such
 * a statement keeps nothing from its first quote to its last: nothing quoted survives
 * either reading.
 */
function maskLiterals(sql: string): string {
  if (/\\['"]/.test(sql)) {
    const first = sql.search(/['"`]/);
    const last = Math.max(sql.lastIndexOf("'"), sql.lastIndexOf('"'), sql.lastIndexOf('`'));
    sql = `${sql.slice(0, first)}?${sql.slice(last + 1)}`;
  }
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) return `${out}?`;
        const d = sql[j];
        if (d === '\\' && c !== '`') j += 2;
        else if (d === c && sql[j + 1] === c) j += 2;
        else if (d === c) break;
        else j += 1;
      }
      out += c === '`' ? sql.slice(i, j + 1) : '?';
      i = j + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) return out;
      out += ' ';
      i = end + 2;
    } else if ((c === '-' && sql[i + 1] === '-') || c === '#') {
      const end = sql.indexOf('\n', i);
      if (end === -1) return out;
      out += ' ';
      i = end;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

/** FNV-1a, 64 bits, as 16 hex digits: stable, dependency-free (workflows import this module). */
function fnv64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

export interface Protected {
  /** The accounts dbops itself runs as on this cluster (backups, restores, the killer). */
  users: readonly string[];
  /** Account name prefixes of dbops's per-run accounts. */
  prefixes: readonly string[];
  /** The killer's own connection. */
  connectionId: number;
}

export interface Selection {
  victims: Victim[];
  spared: Record<Spared, number>;
}

/** Why a session is not a victim, or null when it is one (before the per-run cap). */
export function spareReason(row: ProcessRow, policy: KillPolicy, own: Protected): Spared | null {
  if (row.id === own.connectionId) return 'self';
  if (REPLICATION_COMMANDS.has(row.command.toLowerCase())) return 'replication';
  if (SYSTEM_USERS.has(row.user.toLowerCase()) || row.command === 'Daemon') return 'system';
  if (own.users.includes(row.user) || own.prefixes.some((p) => row.user.startsWith(p))) return 'dbops';
  if (row.info === null || row.command === 'Sleep' || row.command === 'Killed') return 'not-busy';
  if (row.timeSeconds < policy.busySeconds) return 'not-busy';
  if (!policy.killDdl && isDdl(row.info)) return 'ddl';
  if (!matches(policy.match, row)) return 'no-match';
  if (policy.ignore.some((p) => matches(p, row))) return 'ignored';
  return null;
}

/** The victims of one run: the longest-running first, at most maxPerRun. */
export function chooseVictims(rows: readonly ProcessRow[], policy: KillPolicy, own: Protected): Selection {
  const spared = Object.fromEntries(SPARED.map((s) => [s, 0])) as Record<Spared, number>;
  const chosen: ProcessRow[] = [];
  for (const row of rows) {
    const reason = spareReason(row, policy, own);
    if (reason === null) chosen.push(row);
    else spared[reason] += 1;
  }
  chosen.sort((a, b) => b.timeSeconds - a.timeSeconds || a.id - b.id);
  spared['over-cap'] = Math.max(0, chosen.length - policy.maxPerRun);
  return { victims: chosen.slice(0, policy.maxPerRun).map(victimOf), spared };
}

export function victimOf(row: ProcessRow): Victim {
  const { digest, text } = digestOf(row.info ?? '');
  return {
    id: row.id,
    queryId: row.queryId,
    user: row.user.slice(0, 200),
    host: row.host.slice(0, 300),
    db: row.db === null ? null : row.db.slice(0, 200),
    command: row.command.slice(0, 64),
    timeSeconds: Math.max(0, Math.floor(row.timeSeconds)),
    rowsExamined: row.rowsExamined,
    digest,
    digestText: text,
  };
}

/** What became of a victim: killed, or why not (it finished, or its session now runs something else). */
export const KILL_OUTCOMES = ['killed', 'would-kill', 'gone', 'changed'] as const;
export type KillOutcome = (typeof KILL_OUTCOMES)[number];

export const KillRecordSchema = VictimSchema.extend({ outcome: z.enum(KILL_OUTCOMES), mode: z.enum(KILL_MODES) });
export type KillRecord = z.infer<typeof KillRecordSchema>;

export const KillReportSchema = z.strictObject({
  formatVersion: z.literal(1),
  cluster: z.string(),
  runKey: z.string(),
  observedAt: z.string(),
  finishedAt: z.string(),
  dryRun: z.boolean(),
  mode: z.enum(KILL_MODES),
  busySeconds: z.number(),
  sessions: z.number().int().nonnegative(),
  spared: z.record(z.enum(SPARED), z.number().int().nonnegative()),
  records: z.array(KillRecordSchema),
  requestedBy: z.string().nullable(),
  workflow: z.object({ workflowId: z.string(), runId: z.string() }),
});
export type KillReport = z.infer<typeof KillReportSchema>;

export const QUERY_KILLER_EVENT = 'slow-queries-killed';

export function killSummary(r: Pick<KillReport, 'cluster' | 'records' | 'dryRun' | 'sessions' | 'busySeconds'>): string {
  const killed = r.records.filter((x) => x.outcome === 'killed').length;
  const would = r.records.filter((x) => x.outcome === 'would-kill').length;
  if (r.dryRun) return `${r.cluster}: ${would} of ${r.sessions} session(s) over ${r.busySeconds} s would be killed (dry run)`;
  return `${r.cluster}: ${killed} statement(s) over ${r.busySeconds} s killed of ${r.sessions} session(s)`;
}

/** A warning when something was killed (or would be); nothing to say otherwise. */
export function killAlert(r: KillReport, reportKey: string | null): { severity: Severity; event: string; cluster: string; message: string } | null {
  const acted = r.records.filter((x) => x.outcome === 'killed' || x.outcome === 'would-kill');
  if (acted.length === 0) return null;
  const lines = acted.slice(0, 5).map((x) => `${x.user}@${x.host.replace(/:\d+$/, '')} ${x.timeSeconds} s: ${x.digestText.slice(0, 120)}`);
  return {
    severity: 'warning',
    event: QUERY_KILLER_EVENT,
    cluster: r.cluster,
    message: `${killSummary(r)}. ${lines.join(' | ')}${acted.length > 5 ? ` | and ${acted.length - 5} more` : ''}${reportKey ? ` (report ${reportKey})` : ''}`,
  };
}
