/**
 * Safe index changes, the pure part: what an operator's statement asks for (read by the
 * lexer, accepted only when it is one index added or dropped), the statements the worker
 * builds from that (never the operator's text), the checks a DBA makes before starting
 * (disk, engine, columns, an online build, transactions in the way), the verify queries'
 * EXPLAIN plans read back, and the rollback. Pure: workflows, the CLI and tests import it.
 */
import { z } from 'zod';
import { SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE, quoteIdentifier } from './identifiers';
import { formatBytes } from './naming';
import { codeTokens, identifierName, isKeyword, LexError, tokenize, type Token } from './sql/lexer';

const identifier = z.string().regex(SQL_IDENTIFIER_PATTERN, SQL_IDENTIFIER_RULE);

export const IndexColumnSchema = z.strictObject({
  name: identifier,
  /** A prefix length, as in `title(20)`. */
  prefix: z.number().int().min(1).max(3072).nullable(),
  desc: z.boolean(),
});
export type IndexColumn = z.infer<typeof IndexColumnSchema>;

/** One index added or dropped: what a schema-change run carries (names, never SQL). */
export const IndexChangeSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('add-index'),
    table: identifier,
    index: identifier.refine((n) => n.toUpperCase() !== 'PRIMARY', 'PRIMARY is not an index name dbops adds'),
    unique: z.boolean(),
    columns: z
      .array(IndexColumnSchema)
      .min(1)
      .max(16, 'at most 16 columns in an index')
      .refine((c) => new Set(c.map((x) => x.name.toLowerCase())).size === c.length, 'a column is named twice'),
  }),
  z.strictObject({
    kind: z.literal('drop-index'),
    table: identifier,
    index: identifier.refine((n) => n.toUpperCase() !== 'PRIMARY', 'dropping the primary key is not an index change dbops runs'),
  }),
]);
export type IndexChange = z.infer<typeof IndexChangeSchema>;
export type AddIndex = Extract<IndexChange, { kind: 'add-index' }>;

export class SchemaChangeRefused extends Error {}

const SUPPORTED =
  'dbops runs one index change per run: ALTER TABLE t ADD [UNIQUE] INDEX name (col, ...), CREATE [UNIQUE] INDEX name ON t (col, ...), ALTER TABLE t DROP INDEX name or DROP INDEX name ON t; run other DDL with your usual tool';

function refuse(why: string): never {
  throw new SchemaChangeRefused(`${why}. ${SUPPORTED}`);
}

/** Reads tokens left to right; every helper names what it expected when it fails. */
class Reader {
  private i = 0;
  constructor(private readonly t: Token[]) {}
  peek(offset = 0): Token | undefined {
    return this.t[this.i + offset];
  }
  done(): boolean {
    return this.i >= this.t.length;
  }
  keyword(...words: string[]): string {
    const tok = this.t[this.i];
    if (!isKeyword(tok, ...words)) refuse(`expected ${words.join(' or ')} at ${JSON.stringify(tok?.text ?? 'the end')}`);
    this.i++;
    return (tok as Token).text.toUpperCase();
  }
  optional(...words: string[]): string | null {
    if (!isKeyword(this.t[this.i], ...words)) return null;
    return (this.t[this.i++] as Token).text.toUpperCase();
  }
  punct(p: string): boolean {
    if (this.t[this.i]?.text !== p) return false;
    this.i++;
    return true;
  }
  expectPunct(p: string, what: string): void {
    if (!this.punct(p)) refuse(`expected "${p}" ${what} at ${JSON.stringify(this.t[this.i]?.text ?? 'the end')}`);
  }
  name(what: string): string {
    const tok = this.t[this.i];
    const n = identifierName(tok);
    if (n === null) refuse(`expected ${what} at ${JSON.stringify(tok?.text ?? 'the end')}`);
    if (!SQL_IDENTIFIER_PATTERN.test(n)) refuse(`${what} ${JSON.stringify(n)} is not a name dbops accepts (${SQL_IDENTIFIER_RULE})`);
    this.i++;
    return n;
  }
  number(what: string): number {
    const tok = this.t[this.i];
    if (tok?.kind !== 'number' || !/^\d{1,5}$/.test(tok.text)) refuse(`expected ${what} at ${JSON.stringify(tok?.text ?? 'the end')}`);
    this.i++;
    return Number(tok.text);
  }
}

/** `[db.]table`: the database, when named, must be the run's. */
function tableName(r: Reader, database: string): string {
  const first = r.name('a table name');
  if (!r.punct('.')) return first;
  if (first !== database) refuse(`the statement names database ${first}, but the run is for ${database} (--database)`);
  return r.name('a table name');
}

function columnList(r: Reader): IndexColumn[] {
  r.expectPunct('(', 'before the index columns');
  const columns: IndexColumn[] = [];
  do {
    if (r.peek()?.text === '(') refuse('functional (expression) index parts are not supported');
    const name = r.name('a column name');
    let prefix: number | null = null;
    if (r.punct('(')) {
      prefix = r.number('a prefix length');
      r.expectPunct(')', 'after the prefix length');
    }
    const order = r.optional('ASC', 'DESC');
    columns.push({ name, prefix, desc: order === 'DESC' });
  } while (r.punct(','));
  r.expectPunct(')', 'after the index columns');
  return columns;
}

/** Index options the server would apply silently; anything else after the columns is refused. */
function indexOptions(r: Reader): void {
  while (!r.done()) {
    if (r.optional('USING')) {
      r.keyword('BTREE');
      continue;
    }
    if (r.peek()?.text === ';' || r.peek()?.text === ',') return;
    refuse(`unexpected ${JSON.stringify(r.peek()?.text)} after the index definition (index options, ALGORITHM and LOCK are set by dbops)`);
  }
}

function end(r: Reader): void {
  r.punct(';');
  if (!r.done()) refuse(`unexpected ${JSON.stringify(r.peek()?.text)} after the statement (one change per run)`);
}

/**
 * The change an operator's statement asks for, or SchemaChangeRefused saying why and
 * what is supported. The statement is never run: the worker builds its own from this.
 */
export function parseIndexChange(sql: string, database: string): IndexChange {
  if (sql.length > 10_000) refuse('the statement is longer than 10,000 characters');
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch (error) {
    refuse(`the statement does not lex: ${(error as LexError).message}`);
  }
  if (tokens.some((t) => t.kind === 'execOpen')) refuse('executable comments (/*! ... */) are not accepted in a schema change');
  const r = new Reader(codeTokens(tokens));
  const verb = r.keyword('ALTER', 'CREATE', 'DROP');
  let change: IndexChange;
  if (verb === 'ALTER') {
    if (r.optional('ONLINE', 'IGNORE')) refuse('ALTER ONLINE / IGNORE: dbops chooses how the change runs');
    r.keyword('TABLE');
    const table = tableName(r, database);
    const action = r.keyword('ADD', 'DROP');
    if (action === 'ADD') {
      const unique = r.optional('UNIQUE') !== null;
      const kind = r.optional('INDEX', 'KEY');
      if (kind === null) refuse(unique ? 'expected INDEX or KEY after UNIQUE' : 'only ADD [UNIQUE] INDEX / KEY is an index change (not columns, constraints, FULLTEXT or SPATIAL)');
      const index = r.name('an index name (dbops does not let the server make one up: rollback needs it)');
      const columns = columnList(r);
      change = { kind: 'add-index', table, index, unique, columns };
      indexOptions(r);
    } else {
      r.keyword('INDEX', 'KEY');
      change = { kind: 'drop-index', table, index: r.name('an index name') };
    }
    if (r.peek()?.text === ',') refuse('more than one change in the statement (one index per run)');
  } else if (verb === 'CREATE') {
    const unique = r.optional('UNIQUE') !== null;
    if (r.optional('FULLTEXT', 'SPATIAL')) refuse('FULLTEXT and SPATIAL indexes are not supported');
    r.keyword('INDEX');
    const index = r.name('an index name');
    r.keyword('ON');
    const table = tableName(r, database);
    const columns = columnList(r);
    change = { kind: 'add-index', table, index, unique, columns };
    indexOptions(r);
    if (r.peek()?.text === ',') refuse(`unexpected "," after the index definition`);
  } else {
    r.keyword('INDEX');
    const index = r.name('an index name');
    r.keyword('ON');
    change = { kind: 'drop-index', table: tableName(r, database), index };
  }
  end(r);
  const parsed = IndexChangeSchema.safeParse(change);
  if (!parsed.success) refuse(parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}

function columnsSql(columns: IndexColumn[]): string {
  return columns.map((c) => `${quoteIdentifier(c.name)}${c.prefix !== null ? `(${c.prefix})` : ''}${c.desc ? ' DESC' : ''}`).join(', ');
}

/** The statement the worker runs: online (the server refuses rather than lock or copy). */
export function changeStatement(database: string, change: IndexChange, online = true): string {
  const target = `${quoteIdentifier(database)}.${quoteIdentifier(change.table)}`;
  const how = online ? ', ALGORITHM=INPLACE, LOCK=NONE' : '';
  if (change.kind === 'drop-index') return `ALTER TABLE ${target} DROP INDEX ${quoteIdentifier(change.index)}${how}`;
  return `ALTER TABLE ${target} ADD ${change.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdentifier(change.index)} (${columnsSql(change.columns)})${how}`;
}

/** The same change onto another table (the probe that asks the server whether it can run online). */
export function onTable(change: IndexChange, table: string): IndexChange {
  return { ...change, table };
}

/** What undoes the change: dropping the index added. A drop has no computed rollback (the definition is in the schema backup). */
export function rollbackOf(change: IndexChange): IndexChange | null {
  return change.kind === 'add-index' ? { kind: 'drop-index', table: change.table, index: change.index } : null;
}

/** The change as a DBA would write it (for summaries, the UI and the report). */
export function describeChange(database: string, change: IndexChange): string {
  return change.kind === 'add-index'
    ? `CREATE ${change.unique ? 'UNIQUE ' : ''}INDEX ${change.index} ON ${database}.${change.table} (${change.columns.map((c) => `${c.name}${c.prefix !== null ? `(${c.prefix})` : ''}${c.desc ? ' DESC' : ''}`).join(', ')})`
    : `DROP INDEX ${change.index} ON ${database}.${change.table}`;
}

// --- the index as the server describes it ------------------------------------------------

/** One row of information_schema.STATISTICS for an index, in SEQ_IN_INDEX order. */
export interface IndexPart {
  column: string;
  subPart: number | null;
  nonUnique: boolean;
  /** 'A' ascending, 'D' descending, null unknown. */
  collation: string | null;
}

/** Whether an existing index is exactly the one the change adds (so a retried build is done, not a conflict). */
export function sameIndex(change: AddIndex, parts: IndexPart[]): boolean {
  if (parts.length !== change.columns.length) return false;
  return parts.every((p, i) => {
    const c = change.columns[i] as IndexColumn;
    return p.column.toLowerCase() === c.name.toLowerCase() && p.subPart === c.prefix && p.nonUnique === !change.unique && (p.collation === null || (p.collation === 'D') === c.desc);
  });
}

// --- preflight ---------------------------------------------------------------------------

export interface TableFacts {
  engine: string | null;
  /** information_schema.TABLES: the server's estimate. */
  rowsEstimate: number;
  dataBytes: number;
  indexBytes: number;
  columns: string[];
  /** Index name -> its parts. */
  indexes: Record<string, IndexPart[]>;
}

export interface Blocker {
  /** Processlist id of the session. */
  id: number;
  user: string;
  seconds: number;
  what: 'long transaction' | 'metadata lock holder' | 'waiting for metadata lock';
}

export interface Preflight {
  table: TableFacts | null;
  /** Bytes free where the server builds the index, null when the worker cannot see that disk. */
  freeBytes: number | null;
  /** Which folder freeBytes was measured on. */
  freeOn: string | null;
  /** The server's answer to the same change, online, on an empty copy of the table: null = accepted. */
  onlineRefusal: string | null;
  blockers: Blocker[];
}

export interface PreflightLimits {
  /** Free disk that must remain besides the table's size. */
  headroomBytes: number;
}

/** Bytes the build may need: the table's data and indexes again (sort files, the online log, the new index), a conservative bound. */
export function bytesNeeded(t: TableFacts): number {
  return t.dataBytes + t.indexBytes;
}

/** Why the change must not start, each a sentence naming the fix; empty when it may. */
export function preflightRefusals(database: string, change: IndexChange, p: Preflight, limits: PreflightLimits): string[] {
  const out: string[] = [];
  const t = p.table;
  if (!t) return [`table ${database}.${change.table} does not exist`];
  if (t.engine === null || t.engine.toLowerCase() !== 'innodb') out.push(`${database}.${change.table} is ${t.engine ?? 'a view'}, not InnoDB: only InnoDB builds an index online`);
  const existing = Object.keys(t.indexes).find((n) => n.toLowerCase() === change.index.toLowerCase());
  if (change.kind === 'add-index') {
    const have = new Set(t.columns.map((c) => c.toLowerCase()));
    const missing = change.columns.filter((c) => !have.has(c.name.toLowerCase())).map((c) => c.name);
    if (missing.length) out.push(`${database}.${change.table} has no column ${missing.join(', ')}`);
    if (existing) out.push(`${database}.${change.table} already has an index named ${existing}: pick another name (or drop it first)`);
    if (p.freeBytes !== null && p.freeBytes < bytesNeeded(t) + limits.headroomBytes) {
      out.push(`${formatBytes(p.freeBytes)} free on ${p.freeOn ?? 'the server'}, the build needs the table's ${formatBytes(bytesNeeded(t))} plus the ${formatBytes(limits.headroomBytes)} headroom (schemaChange.diskHeadroom): free space first`);
    }
  } else if (!existing) out.push(`${database}.${change.table} has no index named ${change.index}`);
  if (p.onlineRefusal) out.push(`the server cannot run it online: ${p.onlineRefusal}`);
  return out;
}

/** Warnings for the approver: what the preflight could not measure, what is in the way now. */
export function preflightWarnings(p: Preflight): string[] {
  const out: string[] = [];
  if (p.freeBytes === null) out.push("free disk not measured: the server's datadir is not visible from the worker (check it by hand)");
  for (const b of p.blockers) out.push(`session ${b.id} (${b.user}) ${b.what} for ${b.seconds} s: the change waits for it before it starts`);
  return out;
}

// --- watching the build --------------------------------------------------------------------

/** Above `pauseAt` the build does not start (it waits); above `abortAt` for `abortAfter` samples in a row it is stopped. */
export interface WatchLimits {
  pauseThreadsRunning: number;
  abortThreadsRunning: number;
  pauseReplicaLagSeconds: number;
  abortReplicaLagSeconds: number;
  /** Sessions queued behind a metadata lock on the table while the change waits for it. */
  abortMdlWaiters: number;
  abortAfter: number;
}

export interface WatchSample {
  threadsRunning: number;
  replicas: Array<{ cluster: string; lagSeconds: number | null }>;
  mdlWaiters: number;
  blockers: number;
}

/** Why the build should not start now, or null. */
export function startHeld(s: WatchSample, l: WatchLimits): string | null {
  // The change's own session counts once it runs; before, the sampler's.
  if (s.threadsRunning > l.pauseThreadsRunning) return `Threads_running ${s.threadsRunning} > ${l.pauseThreadsRunning}`;
  const lag = s.replicas.find((r) => r.lagSeconds === null || r.lagSeconds > l.pauseReplicaLagSeconds);
  if (lag) return lag.lagSeconds === null ? `replica ${lag.cluster} is not replicating` : `replica ${lag.cluster} ${lag.lagSeconds} s behind > ${l.pauseReplicaLagSeconds} s`;
  if (s.blockers > 0) return `${s.blockers} session(s) hold a transaction or a lock the change would wait for`;
  return null;
}

/** Why the running build is over a limit this sample, or null. */
export function overLimit(s: WatchSample, l: WatchLimits): string | null {
  if (s.threadsRunning > l.abortThreadsRunning) return `Threads_running ${s.threadsRunning} > ${l.abortThreadsRunning}`;
  const lag = s.replicas.find((r) => r.lagSeconds !== null && r.lagSeconds > l.abortReplicaLagSeconds);
  if (lag) return `replica ${lag.cluster} ${lag.lagSeconds} s behind > ${l.abortReplicaLagSeconds} s`;
  if (s.mdlWaiters > l.abortMdlWaiters) return `${s.mdlWaiters} sessions queued behind the change's metadata lock > ${l.abortMdlWaiters}`;
  return null;
}

// --- verify queries and their plans --------------------------------------------------------

/**
 * The functions a verify query may call: pure built-ins of both products (dates, strings,
 * numbers, aggregates). Anything else followed by "(" is refused, quoted or qualified
 * names included: a stored or loadable function, SLEEP, a lock, a sequence, a wait.
 */
const ALLOWED_CALLS = new Set([
  'COUNT', 'SUM', 'MIN', 'MAX', 'AVG',
  'NOW', 'CURDATE', 'CURRENT_DATE', 'CURRENT_TIMESTAMP', 'UTC_TIMESTAMP', 'UTC_DATE', 'DATE', 'TIME', 'TIMESTAMP', 'YEAR', 'MONTH', 'DAY', 'HOUR', 'MINUTE', 'SECOND', 'WEEK',
  'DATE_ADD', 'DATE_SUB', 'ADDDATE', 'SUBDATE', 'DATEDIFF', 'TIMESTAMPDIFF', 'TIMESTAMPADD', 'DATE_FORMAT', 'STR_TO_DATE', 'UNIX_TIMESTAMP', 'FROM_UNIXTIME', 'LAST_DAY', 'MAKEDATE',
  'LOWER', 'UPPER', 'LCASE', 'UCASE', 'CONCAT', 'CONCAT_WS', 'SUBSTRING', 'SUBSTR', 'LEFT', 'RIGHT', 'LENGTH', 'CHAR_LENGTH', 'TRIM', 'LTRIM', 'RTRIM', 'REPLACE', 'LPAD', 'RPAD',
  'ABS', 'ROUND', 'FLOOR', 'CEIL', 'CEILING', 'MOD', 'GREATEST', 'LEAST',
  'COALESCE', 'IFNULL', 'NULLIF', 'IF', 'CAST', 'CONVERT',
]);
/** Words that may stand before "(" without being a call. */
const PAREN_KEYWORDS = new Set(['IN', 'AND', 'OR', 'NOT', 'XOR', 'ON', 'USING', 'WHERE', 'HAVING', 'BY', 'AS', 'BETWEEN', 'IS', 'LIKE', 'SELECT', 'FROM', 'JOIN', 'WHEN', 'THEN', 'ELSE', 'CASE', 'INTERVAL', 'DISTINCT', 'INDEX', 'KEY']);

/**
 * Whether an operator's verify query is one plain SELECT the worker may EXPLAIN: null when
 * it is, else why not. The worker runs it only as `EXPLAIN FORMAT=JSON`, with the cluster's
 * read-only account, in a read-only transaction, under a time limit and a fixed sql_mode.
 * What EXPLAIN could still evaluate is kept out by construction: no subquery or UNION (the
 * optimizer may run a subquery to plan), no call outside ALLOWED_CALLS, no comment (MySQL
 * reads optimizer hints in them), no variable, placeholder, backslash or double quote (what
 * a string is must not depend on sql_mode), and a table named with a database only when it
 * is the run's (`database`, when given).
 */
export function verifyQueryProblem(sql: string, database?: string): string | null {
  if (sql.length > 10_000) return 'longer than 10,000 characters';
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch (error) {
    return `does not lex: ${(error as LexError).message}`;
  }
  if (tokens.some((t) => t.kind === 'execOpen' || t.kind === 'comment')) return 'comments (and the optimizer hints and executable code they can carry) are not accepted';
  const code = codeTokens(tokens);
  const last = code.length && code[code.length - 1]?.text === ';' ? code.slice(0, -1) : code;
  if (!isKeyword(last[0], 'SELECT')) return 'not a SELECT (only SELECT statements are explained)';
  for (let i = 0; i < last.length; i++) {
    const t = last[i] as Token;
    const next = last[i + 1];
    if (t.text === ';') return 'more than one statement';
    if (t.text === '?') return 'placeholders (?) cannot be explained: write the value';
    if (t.kind === 'variable') return 'variables are not accepted';
    if (t.kind === 'operator' && t.text === ':=') return 'assignments are not accepted';
    if (t.kind === 'string' && (t.text.startsWith('"') || t.text.includes('\\'))) return 'double-quoted strings and backslashes are not accepted (write \'…\' strings without escapes)';
    if (t.kind === 'word' && /^[0-9.]/.test(t.text)) return `${JSON.stringify(t.text.slice(0, 40))}: a number joined to a word is not accepted`;
    if (i > 0 && isKeyword(t, 'SELECT', 'UNION', 'EXCEPT', 'INTERSECT')) return 'subqueries and UNION are not accepted (EXPLAIN may run a subquery to plan it)';
    if (isKeyword(t, 'INTO', 'OUTFILE', 'DUMPFILE', 'PROCEDURE')) return `${t.text.toUpperCase()} is not accepted`;
    if (isKeyword(t, 'FOR') && isKeyword(next, 'UPDATE', 'SHARE')) return 'locking reads (FOR UPDATE / FOR SHARE) are not accepted';
    if (isKeyword(t, 'LOCK') && isKeyword(next, 'IN')) return 'locking reads (LOCK IN SHARE MODE) are not accepted';
    if (isKeyword(t, 'NEXT', 'PREVIOUS') && isKeyword(next, 'VALUE')) return 'sequences are not accepted';
    if (next?.text === '(' && (t.kind === 'word' || t.kind === 'quoted')) {
      const name = t.kind === 'word' ? t.text.toUpperCase() : '';
      const qualified = last[i - 1]?.text === '.';
      if (qualified || !(ALLOWED_CALLS.has(name) || PAREN_KEYWORDS.has(name))) return `${t.text}() is not accepted in a verify query (pure built-in functions only)`;
    }
    // A table named with its database, after FROM / JOIN / a comma of the FROM list: only the run's.
    if (database !== undefined && isKeyword(last[i - 1], 'FROM', 'JOIN') && next?.text === '.' && identifierName(t)?.toLowerCase() !== database.toLowerCase()) {
      return `reads ${identifierName(t)}.${identifierName(last[i + 2]) ?? '?'}: verify queries read the run's database (${database}) only`;
    }
  }
  if (database !== undefined) {
    // Comma-joined tables: every "name ." right after a comma in the FROM clause.
    let inFrom = false;
    for (let i = 0; i < last.length; i++) {
      const t = last[i] as Token;
      if (isKeyword(t, 'FROM')) inFrom = true;
      else if (isKeyword(t, 'WHERE', 'GROUP', 'ORDER', 'HAVING', 'LIMIT', 'ON', 'USING')) inFrom = false;
      if (inFrom && last[i - 1]?.text === ',' && last[i + 1]?.text === '.' && identifierName(t)?.toLowerCase() !== database.toLowerCase()) {
        return `reads ${identifierName(t)}.${identifierName(last[i + 2]) ?? '?'}: verify queries read the run's database (${database}) only`;
      }
    }
  }
  return null;
}

/** The verify queries a run carries: at most 10, each one plain SELECT (verifyQueryProblem). */
export const VerifyQueriesSchema = z
  .array(z.string().min(1).max(10_000))
  .max(10, 'at most 10 verify queries')
  .superRefine((qs, ctx) =>
    qs.forEach((q, i) => {
      const problem = verifyQueryProblem(q);
      if (problem) ctx.addIssue({ code: 'custom', path: [i], message: `verify query ${i + 1}: ${problem}` });
    }),
  );

/** One table access in a plan. */
export interface PlanAccess {
  table: string;
  accessType: string | null;
  key: string | null;
  possibleKeys: string[];
  rows: number | null;
}

function keyNames(key: string): string[] {
  // index_merge: "union(a,b)", "sort_union(a,b)", "intersect(a,b)"
  const m = /^[a-z_]+\((.*)\)$/i.exec(key);
  return (m ? (m[1] as string).split(',') : [key]).map((k) => k.trim()).filter(Boolean);
}

/** Every table access in an EXPLAIN FORMAT=JSON document (MariaDB, MySQL's formats 1 and 2). */
export function planAccesses(json: unknown): PlanAccess[] {
  const out: PlanAccess[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (typeof o.table_name === 'string') {
      const key = typeof o.key === 'string' ? o.key : typeof o.index_name === 'string' ? o.index_name : null;
      const rows = o.rows ?? o.rows_examined_per_scan ?? o.estimated_rows;
      out.push({
        table: o.table_name,
        accessType: typeof o.access_type === 'string' ? o.access_type : null,
        key,
        possibleKeys: Array.isArray(o.possible_keys) ? o.possible_keys.filter((k): k is string => typeof k === 'string') : [],
        rows: typeof rows === 'number' ? rows : null,
      });
    }
    for (const [k, v] of Object.entries(o)) if (k !== 'query' && k !== 'attached_condition') walk(v);
  };
  walk(json);
  return out;
}

/** The names a query uses for a table: the table itself and each alias it is given (`t AS x`, `t x`). */
export function tableAliases(sql: string, table: string): string[] {
  const names = new Set([table.toLowerCase()]);
  let code: Token[];
  try {
    code = codeTokens(tokenize(sql));
  } catch {
    return [...names];
  }
  const RESERVED = ['WHERE', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'CROSS', 'STRAIGHT_JOIN', 'ON', 'USING', 'GROUP', 'ORDER', 'LIMIT', 'HAVING', 'UNION', 'FORCE', 'USE', 'IGNORE', 'NATURAL', 'WINDOW', 'FOR', 'LOCK', 'PARTITION'];
  for (let i = 0; i < code.length; i++) {
    if (identifierName(code[i])?.toLowerCase() !== table.toLowerCase() || code[i + 1]?.text === '.' || code[i + 1]?.text === '(') continue;
    let j = i + 1;
    if (isKeyword(code[j], 'AS')) j++;
    const alias = code[j];
    if (alias && (alias.kind === 'quoted' || (alias.kind === 'word' && !isKeyword(alias, ...RESERVED)))) names.add((identifierName(alias) as string).toLowerCase());
  }
  return [...names];
}

/** Whether a plan reads `table` (under any of its names in the query) through `index`. */
export function usesIndex(accesses: PlanAccess[], tableNames: string[], index: string): boolean {
  const names = new Set(tableNames.map((n) => n.toLowerCase()));
  return accesses.some((a) => names.has(a.table.toLowerCase()) && a.key !== null && keyNames(a.key).some((k) => k.toLowerCase() === index.toLowerCase()));
}

export interface VerifyPlan {
  /** Position in the run's verify queries. */
  query: number;
  accesses: PlanAccess[];
  usesIndex: boolean;
}

/** Why verification failed (each query that does not use the new index), or null. */
export function verificationFailure(change: IndexChange, after: VerifyPlan[]): string | null {
  if (change.kind !== 'add-index') return null;
  const bad = after.filter((p) => !p.usesIndex);
  if (!bad.length) return null;
  return bad
    .map((p) => `verify query ${p.query + 1} does not use ${change.index} (plan: ${p.accesses.map((a) => `${a.table} ${a.accessType ?? '?'} via ${a.key ?? 'no index'}`).join(', ') || 'no table read'})`)
    .join('; ');
}

// --- the run's record ----------------------------------------------------------------------

/** failed: the index was built but a step after it (verification, the rollback) could not finish: it is in place. */
export const SCHEMA_CHANGE_STATUSES = ['refused', 'dry-run', 'rejected', 'aborted', 'cancelled', 'rolled-back', 'failed', 'done'] as const;
export type SchemaChangeStatus = (typeof SCHEMA_CHANGE_STATUSES)[number];

const PlanAccessSchema = z.strictObject({ table: z.string(), accessType: z.string().nullable(), key: z.string().nullable(), possibleKeys: z.array(z.string()), rows: z.number().nullable() });
export const VerifyPlanSchema = z.strictObject({ query: z.number().int().min(0), accesses: z.array(PlanAccessSchema), usesIndex: z.boolean() });

/** What a schema-change run files in the repository when it ends (every status but a dry run). */
export const SchemaChangeReportSchema = z.strictObject({
  formatVersion: z.literal(1),
  cluster: z.string(),
  database: identifier,
  runKey: z.string(),
  change: IndexChangeSchema,
  description: z.string(),
  statement: z.string(),
  rollback: z.string().nullable(),
  status: z.enum(SCHEMA_CHANGE_STATUSES),
  why: z.string().nullable(),
  refusals: z.array(z.string()),
  warnings: z.array(z.string()),
  table: z.strictObject({ engine: z.string().nullable(), rowsEstimate: z.number(), dataBytes: z.number(), indexBytes: z.number() }).nullable(),
  freeBytes: z.number().nullable(),
  /** The schema backup taken first (a backup id of the catalog). */
  schemaBackup: z.strictObject({ id: z.string() }).nullable(),
  approval: z.strictObject({ decision: z.string(), by: z.string().nullable(), at: z.string(), reason: z.string().nullable() }).nullable(),
  build: z
    .strictObject({ outcome: z.string(), why: z.string().nullable(), seconds: z.number(), lockTries: z.number(), samples: z.number(), peakThreadsRunning: z.number(), peakLagSeconds: z.number().nullable(), adopted: z.boolean() })
    .nullable(),
  before: z.array(VerifyPlanSchema),
  after: z.array(VerifyPlanSchema),
  rolledBack: z.strictObject({ by: z.string(), reason: z.string(), at: z.string(), automatic: z.boolean() }).nullable(),
  requestedBy: z.string().nullable(),
  workflow: z.strictObject({ workflowId: z.string(), runId: z.string() }),
  startedAt: z.string(),
  finishedAt: z.string(),
});
export type SchemaChangeReport = z.infer<typeof SchemaChangeReportSchema>;
