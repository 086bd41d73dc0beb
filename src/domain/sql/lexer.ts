/**
 * A MySQL / MariaDB SQL lexer: enough of the grammar to read statements we did not write
 * (binlog events, dump DDL, an operator's archive predicate) token by token, and to put
 * them back together byte for byte after changing a few tokens. Pure.
 *
 * What it knows: quoted strings ('…', "…", with '' / \ escapes), `backtick` identifiers,
 * comments (-- , #, /* *\/, and the client's /*!\C charset *\/), executable comments (/*!50017 … *\/ and MariaDB's /*M!100001 … *\/),
 * whose content the server runs and which are therefore lexed as code, user and system
 * variables (@x, @@session.x, @'x'), numbers, words and operators. Tokens keep their exact
 * text, so `render(tokens)` returns the input unchanged.
 *
 * Our own code because no maintained JavaScript SQL parser follows MySQL's executable
 * comments and quoting rules closely enough to be trusted with what a restore replays;
 * a lexer (not a parser) is small enough to be exact.
 */

export type TokenKind =
  | 'space'
  | 'comment'
  /** `/*!50017 ` or `/*M!100001 `: the server executes what follows up to the close. */
  | 'execOpen'
  | 'execClose'
  | 'string'
  /** `name` */
  | 'quoted'
  | 'word'
  | 'number'
  /** @x, @'x', @`x`, @@x, @@session.x */
  | 'variable'
  | 'operator'
  | 'punct';

export interface Token {
  kind: TokenKind;
  text: string;
  /** Offset of the first character in the input. */
  start: number;
}

export class LexError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const WORD_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const OPERATORS = ['<=>', '->>', '<=', '>=', '<>', '!=', ':=', '||', '&&', '<<', '>>', '->', '=', '<', '>', '!', '+', '-', '*', '/', '%', '^', '&', '|', '~'];
const PUNCT = new Set(['(', ')', ',', '.', ';', '?', '{', '}']);

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

/** End (exclusive) of a quoted run starting at `open`; -1 when it never closes. */
function closeQuote(text: string, open: number): number {
  const quote = text[open];
  for (let i = open + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && quote !== '`') {
      i++;
      continue;
    }
    if (ch === quote) {
      if (text[i + 1] === quote) {
        i++;
        continue;
      }
      return i + 1;
    }
  }
  return -1;
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let inExec = false;
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    tokens.push({ kind, text: text.slice(i, end), start: i });
    i = end;
  };
  while (i < text.length) {
    const ch = text[i] as string;
    const next = text[i + 1];
    if (isSpace(ch)) {
      let j = i + 1;
      while (j < text.length && isSpace(text[j])) j++;
      push('space', j);
      continue;
    }
    if (inExec && ch === '*' && next === '/') {
      inExec = false;
      push('execClose', i + 2);
      continue;
    }
    if (ch === '/' && next === '*') {
      // /*!\C utf8mb4 */ is a command to the mysql client (character set), not SQL.
      const exec = text.startsWith('/*!\\', i) ? null : /^\/\*(M?!)(\d{5,6})?\s?/.exec(text.slice(i, i + 12));
      if (exec) {
        if (inExec) throw new LexError('nested executable comment', i);
        inExec = true;
        push('execOpen', i + exec[0].length);
        continue;
      }
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new LexError('unclosed comment', i);
      push('comment', end + 2);
      continue;
    }
    if (ch === '#' || (ch === '-' && next === '-' && (i + 2 >= text.length || isSpace(text[i + 2])))) {
      const end = text.indexOf('\n', i);
      push('comment', end < 0 ? text.length : end);
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      const end = closeQuote(text, i);
      if (end < 0) throw new LexError(`unclosed ${ch} quote`, i);
      push(ch === '`' ? 'quoted' : 'string', end);
      continue;
    }
    if (ch === '@') {
      let j = i + 1;
      if (text[j] === '@') j++;
      if (text[j] === "'" || text[j] === '"' || text[j] === '`') {
        const end = closeQuote(text, j);
        if (end < 0) throw new LexError('unclosed quote in a variable name', i);
        push('variable', end);
        continue;
      }
      while (j < text.length && (WORD_CHAR.test(text[j] as string) || text[j] === '.')) j++;
      push('variable', j);
      continue;
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(next ?? ''))) {
      const m = /^(?:0x[0-9A-Fa-f]+|0b[01]+|\d*\.?\d+(?:[eE][+-]?\d+)?|\d+\.)/.exec(text.slice(i));
      const end = i + (m?.[0].length ?? 1);
      // 1abc is a word (identifiers may start with a digit).
      if (end < text.length && WORD_CHAR.test(text[end] as string)) {
        let j = end;
        while (j < text.length && WORD_CHAR.test(text[j] as string)) j++;
        push('word', j);
        continue;
      }
      push('number', end);
      continue;
    }
    if (WORD_CHAR.test(ch)) {
      let j = i + 1;
      while (j < text.length && WORD_CHAR.test(text[j] as string)) j++;
      push('word', j);
      continue;
    }
    if (PUNCT.has(ch)) {
      push('punct', i + 1);
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op) {
      push('operator', i + op.length);
      continue;
    }
    throw new LexError(`unexpected character ${JSON.stringify(ch)}`, i);
  }
  if (inExec) throw new LexError('unclosed executable comment', text.length);
  return tokens;
}

export function render(tokens: readonly Token[]): string {
  return tokens.map((t) => t.text).join('');
}

/** Tokens the server reads as code: no spaces, comments or executable-comment markers. */
export function codeTokens(tokens: readonly Token[]): Token[] {
  return tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment' && t.kind !== 'execOpen' && t.kind !== 'execClose');
}

/** A word or a `quoted` identifier, as the server names it (unquoted). */
export function identifierName(t: Token | undefined): string | null {
  if (!t) return null;
  if (t.kind === 'quoted') return t.text.slice(1, -1).replace(/``/g, '`');
  if (t.kind === 'word') return t.text;
  return null;
}

export function isKeyword(t: Token | undefined, ...words: string[]): boolean {
  return t?.kind === 'word' && words.includes(t.text.toUpperCase());
}

export function quoteName(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** The text of a string literal ('it''s' -> it's). */
export function stringValue(t: Token): string {
  const body = t.text.slice(1, -1);
  const q = t.text[0] as string;
  return body.replace(new RegExp(`${q}${q}`, 'g'), q).replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t', r: '\r', '0': '\0' })[c] ?? c);
}
