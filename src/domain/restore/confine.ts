/**
 * Keeping a restore inside its target. A restore into another name (`shop` restored as
 * `shop_before`) replays statements that were written for the live database: DDL is always
 * logged as a statement, and under MIXED or STATEMENT format so is most DML. mysqlbinlog's
 * --rewrite-db changes only the DEFAULT database of an event, never a qualified name, so
 * `CREATE TABLE shop.x`, `DROP TABLE shop.x` or `INSERT INTO shop.t …` would run against the
 * live `shop`. Every statement a restore sends is therefore read here first:
 *
 *   - a name qualified with the source database is rewritten to the target;
 *   - a name qualified with any other database refuses the statement (a restore writes one
 *     database); so does a source name that is also used unqualified (an alias or a column
 *     called like the database: the rewrite would be a guess);
 *   - CREATE / ALTER / DROP DATABASE refuses it (the window dropped or changed a database);
 *   - account management (users, roles, grants) is skipped: it is not part of a database;
 *   - DEFINER clauses become CURRENT_USER (the restore's own account, which can do nothing
 *     outside the target), and the original definers are recorded so that they can be put
 *     back once the restore is verified;
 *   - events are created DISABLED: a restored copy must not start running jobs.
 *
 * Pure; the same rules serve the dump's DDL and the binlog's statements.
 */
import { codeTokens, identifierName, isKeyword, LexError, quoteName, render, tokenize, type Token } from '../sql/lexer';

export interface ConfineContext {
  /** The live database the backup holds. */
  source: string;
  /** The database the restore writes. */
  target: string;
  /**
   * Databases that exist on the server: `x.y` names a database only when x is one of these
   * (or the source or target); otherwise it is table.column or alias.column.
   */
  schemas: ReadonlySet<string>;
  /**
   * A name qualified with another database: refuse the statement (binlog replay: the default),
   * or keep it and say so (dump DDL: a view reading another database; the restore's own account,
   * which can write only the target, decides what the server allows).
   */
  otherDatabases?: 'refuse' | 'keep';
}

export type DefinedObjectType = 'VIEW' | 'TRIGGER' | 'PROCEDURE' | 'FUNCTION' | 'EVENT';

/** An object whose DEFINER was replaced, and who it was. */
export interface DefinerRecord {
  type: DefinedObjectType;
  name: string;
  /** As written, e.g. `root`@`localhost`. */
  definer: string;
}

export type ConfineOutcome =
  | { action: 'keep'; text: string; definers: DefinerRecord[] }
  | { action: 'rewrite'; text: string; changes: string[]; definers: DefinerRecord[] }
  | { action: 'skip'; reason: string }
  | { action: 'refuse'; reason: string; fix: string };

const ACCOUNT_STATEMENTS: ReadonlyArray<readonly string[]> = [
  ['CREATE', 'USER'],
  ['ALTER', 'USER'],
  ['DROP', 'USER'],
  ['RENAME', 'USER'],
  ['CREATE', 'ROLE'],
  ['DROP', 'ROLE'],
  ['GRANT'],
  ['REVOKE'],
  ['SET', 'PASSWORD'],
  ['SET', 'DEFAULT', 'ROLE'],
  ['FLUSH'],
];

const OBJECT_TYPES: readonly DefinedObjectType[] = ['VIEW', 'TRIGGER', 'PROCEDURE', 'FUNCTION', 'EVENT'];

function startsWith(code: readonly Token[], words: readonly string[]): boolean {
  return words.every((w, i) => isKeyword(code[i], w));
}

function isName(t: Token | undefined): boolean {
  return t?.kind === 'word' || t?.kind === 'quoted';
}

function isDot(t: Token | undefined): boolean {
  return t?.kind === 'punct' && t.text === '.';
}

/** `user@host` after DEFINER =: how many code tokens it spans (a name and a variable, or CURRENT_USER [()]). */
function userSpan(code: readonly Token[], at: number): { span: number; text: string } | null {
  const user = code[at];
  if (isKeyword(user, 'CURRENT_USER')) {
    const parens = code[at + 1]?.text === '(' && code[at + 2]?.text === ')' ? 2 : 0;
    return { span: 1 + parens, text: 'CURRENT_USER' };
  }
  if (user && (user.kind === 'word' || user.kind === 'quoted' || user.kind === 'string')) {
    const host = code[at + 1];
    if (host?.kind === 'variable' && !host.text.startsWith('@@')) return { span: 2, text: `${user.text}${host.text}` };
    return { span: 1, text: user.text };
  }
  return null;
}

interface StatementHead {
  /** Code-token index of the user after `DEFINER =`, and its span. */
  definer: { at: number; span: number; text: string } | null;
  object: { type: DefinedObjectType; name: string } | null;
  /** Where a DEFINER clause goes when there is none: before SQL SECURITY or the kind of object. */
  definerSlot: number;
}

/**
 * CREATE/ALTER [OR REPLACE] [ALGORITHM = x] [DEFINER = user] [SQL SECURITY x] {VIEW|TRIGGER|
 * PROCEDURE|FUNCTION|EVENT} [IF NOT EXISTS] [db.]name: only the head, never the body (a column
 * called "definer" in a trigger's body is not a DEFINER clause).
 */
function statementHead(code: readonly Token[]): StatementHead {
  const head: StatementHead = { definer: null, object: null, definerSlot: 1 };
  if (!isKeyword(code[0], 'CREATE', 'ALTER')) return head;
  let i = 1;
  for (;;) {
    const t = code[i];
    if (isKeyword(t, 'OR', 'REPLACE', 'AGGREGATE', 'ONLINE', 'OFFLINE')) i += 1;
    else if (isKeyword(t, 'ALGORITHM') && code[i + 1]?.text === '=') i += 3;
    else if (isKeyword(t, 'SQL') && isKeyword(code[i + 1], 'SECURITY')) {
      if (!head.definer) head.definerSlot = i;
      i += 3;
      continue;
    }
    else if (isKeyword(t, 'DEFINER') && code[i + 1]?.text === '=') {
      const user = userSpan(code, i + 2);
      if (!user) return head;
      head.definer = { at: i + 2, ...user };
      i += 2 + user.span;
    } else break;
  }
  const kind = code[i];
  if (!head.definer && !(head.definerSlot > 1 && isKeyword(code[head.definerSlot], 'SQL'))) head.definerSlot = i;
  if (kind?.kind !== 'word' || !(OBJECT_TYPES as readonly string[]).includes(kind.text.toUpperCase())) return head;
  let j = i + 1;
  if (isKeyword(code[j], 'IF') && isKeyword(code[j + 1], 'NOT') && isKeyword(code[j + 2], 'EXISTS')) j += 3;
  let name = identifierName(code[j]);
  if (isDot(code[j + 1]) && isName(code[j + 2])) name = identifierName(code[j + 2]);
  if (name) head.object = { type: kind.text.toUpperCase() as DefinedObjectType, name };
  return head;
}

export function confineStatement(sql: string, ctx: ConfineContext): ConfineOutcome {
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch (error) {
    const e = error as LexError;
    return { action: 'refuse', reason: `the statement cannot be read (${e.message} at offset ${e.offset})`, fix: 'restore to a point before it' };
  }
  const code = codeTokens(tokens);
  if (code.length === 0) return { action: 'keep', text: sql, definers: [] };

  if (isKeyword(code[0], 'CALL')) {
    // The server logs what a procedure did, never the CALL: one in a replay was not written by the server.
    return { action: 'refuse', reason: 'CALL is never logged by the server; a restore does not run procedures', fix: 'restore to a point before it' };
  }
  for (const words of ACCOUNT_STATEMENTS) {
    if (startsWith(code, words)) return { action: 'skip', reason: `${words.join(' ')} manages accounts, not data: not replayed into a database copy` };
  }
  if (isKeyword(code[0], 'CREATE', 'ALTER', 'DROP') && isKeyword(code[1], 'DATABASE', 'SCHEMA')) {
    const named = identifierName(code[isKeyword(code[2], 'IF') ? (isKeyword(code[3], 'NOT') ? 5 : 4) : 2]);
    return {
      action: 'refuse',
      reason: `${code[0]?.text.toUpperCase()} DATABASE${named ? ` ${quoteName(named)}` : ''}: a database-level statement cannot be replayed into a copy`,
      fix: named === ctx.source ? 'restore to a point before it (it is usually the moment to recover)' : 'restore to a point before it',
    };
  }

  const replace = new Map<Token, string>();
  const changes: string[] = [];
  const definers: DefinerRecord[] = [];

  // DEFINER = … -> DEFINER = CURRENT_USER, remembered per object.
  const head = statementHead(code);
  if (head.definer && head.definer.text !== 'CURRENT_USER') {
    if (head.object) definers.push({ ...head.object, definer: head.definer.text });
    replace.set(code[head.definer.at] as Token, 'CURRENT_USER');
    if (head.definer.span === 2) replace.set(code[head.definer.at + 1] as Token, '');
    changes.push(`DEFINER ${head.definer.text} -> CURRENT_USER`);
  }

  // Events are restored disabled.
  if (head.object?.type === 'EVENT') {
    const doAt = code.findIndex((t) => isKeyword(t, 'DO'));
    const schedule = doAt < 0 ? code : code.slice(0, doAt);
    const enable = schedule.find((t) => isKeyword(t, 'ENABLE'));
    const disabled = schedule.some((t) => isKeyword(t, 'DISABLE'));
    if (enable) {
      replace.set(enable, 'DISABLE');
      changes.push('event ENABLE -> DISABLE');
    } else if (!disabled && isKeyword(code[0], 'CREATE') && doAt > 0) {
      const doToken = code[doAt] as Token;
      replace.set(doToken, `DISABLE ${doToken.text}`);
      changes.push('event created DISABLE');
    }
  }

  // Qualified names.
  let qualifiedSource = false;
  let otherDatabase: string | null = null;
  for (let i = 0; i < code.length; i++) {
    const first = code[i] as Token;
    if (!isName(first) || !isDot(code[i + 1]) || isDot(code[i - 1])) continue;
    const second = code[i + 2];
    if (!isName(second) && second?.text !== '*') continue;
    const threePart = isDot(code[i + 3]) && isName(code[i + 4]);
    const name = identifierName(first) as string;
    const isSchema = threePart || name === ctx.source || name === ctx.target || ctx.schemas.has(name);
    if (!isSchema) continue;
    if (name === ctx.source && ctx.source !== ctx.target) {
      replace.set(first, quoteName(ctx.target));
      qualifiedSource = true;
    } else if (name !== ctx.target && name !== ctx.source) {
      if (ctx.otherDatabases === 'keep') {
        otherDatabase ??= name;
        continue;
      }
      return {
        action: 'refuse',
        reason: `it names database ${quoteName(name)}; a restore of ${quoteName(ctx.source)} into ${quoteName(ctx.target)} writes only its own copy`,
        fix: 'restore to a point before it; with binlog_format=ROW, DML on other databases never reaches a restore',
      };
    }
  }
  if (qualifiedSource) {
    // The database name used unqualified too (alias, table or column): rewriting would be a guess.
    const bare = code.some((t, i) => isName(t) && identifierName(t) === ctx.source && !isDot(code[i + 1]) && !isDot(code[i - 1]));
    if (bare) {
      return {
        action: 'refuse',
        reason: `${quoteName(ctx.source)} is used both as a database and as another name (a table, alias or column) in it; it cannot be rewritten safely`,
        fix: 'restore to a point before it, or use binlog_format=ROW (row events are renamed exactly)',
      };
    }
    changes.push(`${quoteName(ctx.source)}. -> ${quoteName(ctx.target)}.`);
  }

  if (otherDatabase !== null && replace.size === 0) {
    return { action: 'refuse', reason: `it names database ${quoteName(otherDatabase)} (kept as it is)`, fix: 'the restore account can only read what it is granted' };
  }
  if (replace.size === 0) return { action: 'keep', text: sql, definers };
  const text = render(tokens.map((t) => (replace.has(t) ? { ...t, text: replace.get(t) as string } : t)));
  return { action: 'rewrite', text, changes, definers };
}

/** Is this statement DML that the server logged as a statement (MIXED / STATEMENT format)? */
export function isStatementDml(sql: string): boolean {
  try {
    return isKeyword(codeTokens(tokenize(sql))[0], 'INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'LOAD', 'CALL');
  } catch {
    return false;
  }
}

/** The object a CREATE statement defines ({VIEW|TRIGGER|PROCEDURE|FUNCTION|EVENT} name), if any. */
export function createdObject(sql: string): { type: DefinedObjectType; name: string; definer: string | null } | null {
  try {
    const code = codeTokens(tokenize(sql));
    if (!isKeyword(code[0], 'CREATE')) return null;
    const head = statementHead(code);
    return head.object ? { ...head.object, definer: head.definer?.text ?? null } : null;
  } catch {
    return null;
  }
}

/**
 * The same CREATE statement with another DEFINER (added when it has none), and with
 * `CREATE OR REPLACE` when asked (views). The definer is a user@host as written by the
 * server (`name`@`host`, 'name'@'host'), re-lexed here so that it cannot carry more.
 */
export function withDefiner(sql: string, definer: string, options: { orReplace?: boolean } = {}): string {
  const user = codeTokens(tokenize(definer));
  const valid =
    (user.length === 1 && isKeyword(user[0], 'CURRENT_USER')) ||
    (user.length === 2 && (user[0]?.kind === 'quoted' || user[0]?.kind === 'string' || user[0]?.kind === 'word') && user[1]?.kind === 'variable' && !user[1].text.startsWith('@@'));
  if (!valid) throw new Error(`not a definer: ${definer}`);
  const tokens = tokenize(sql);
  const code = codeTokens(tokens);
  if (!isKeyword(code[0], 'CREATE')) throw new Error('not a CREATE statement');
  const head = statementHead(code);
  const replace = new Map<Token, string>();
  if (head.definer) {
    replace.set(code[head.definer.at] as Token, definer);
    if (head.definer.span === 2) replace.set(code[head.definer.at + 1] as Token, '');
    else if (head.definer.span === 3) {
      replace.set(code[head.definer.at + 1] as Token, '');
      replace.set(code[head.definer.at + 2] as Token, '');
    }
  } else {
    const slot = code[head.definerSlot] as Token;
    replace.set(slot, `DEFINER=${definer} ${slot.text}`);
  }
  if (options.orReplace && !isKeyword(code[1], 'OR')) {
    const first = code[0] as Token;
    replace.set(first, (replace.get(first) ?? first.text).replace(/^CREATE/i, 'CREATE OR REPLACE'));
  }
  return render(tokens.map((t) => (replace.has(t) ? { ...t, text: replace.get(t) as string } : t)));
}

/** The table a CREATE TRIGGER statement is defined ON (unqualified name), or null. */
export function triggerTable(sql: string): string | null {
  try {
    const code = codeTokens(tokenize(sql));
    const head = statementHead(code);
    if (head.object?.type !== 'TRIGGER') return null;
    const on = code.findIndex((t) => isKeyword(t, 'ON'));
    if (on < 0) return null;
    const first = code[on + 1];
    return isDot(code[on + 2]) ? identifierName(code[on + 3]) : identifierName(first);
  } catch {
    return null;
  }
}
