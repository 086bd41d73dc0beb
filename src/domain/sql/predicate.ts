/**
 * The archive predicate (`created_at < NOW() - INTERVAL 90 DAY`) is SQL an operator writes
 * and dbops places into every statement of a run, as the write account. So it is parsed
 * here, and only a predicate on the table's own columns is accepted:
 *
 *   columns (unqualified), literals (numbers, strings, NULL, TRUE/FALSE, DATE '…'),
 *   comparisons (= <> != < <= > >= <=>), AND / OR / XOR / NOT, IN (literals), BETWEEN,
 *   IS [NOT] NULL/TRUE/FALSE, [NOT] LIKE … [ESCAPE …], + - * / % DIV MOD, parentheses,
 *   INTERVAL n unit, and a list of functions whose result depends only on their arguments
 *   and on the run's fixed NOW() (date and time functions, COALESCE, IFNULL, a few string
 *   and number functions).
 *
 * Everything else is refused with the offending token: subqueries, other tables, variables,
 * user functions, SYSDATE() (not fixed by the run's timestamp), RAND(), UUID(), SLEEP(),
 * LOAD_FILE() and every other function. Pure.
 */
import { codeTokens, identifierName, isKeyword, LexError, tokenize, type Token } from './lexer';

const FUNCTIONS = new Set([
  // time, fixed for the run by SET timestamp
  'NOW', 'CURDATE', 'CURRENT_DATE', 'CURRENT_TIMESTAMP', 'CURTIME', 'CURRENT_TIME', 'UTC_TIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'LOCALTIME', 'LOCALTIMESTAMP',
  // date arithmetic and parts
  'DATE', 'TIME', 'TIMESTAMP', 'YEAR', 'MONTH', 'DAY', 'DAYOFMONTH', 'DAYOFWEEK', 'DAYOFYEAR', 'WEEKDAY', 'HOUR', 'MINUTE', 'SECOND', 'WEEK', 'QUARTER',
  'DATE_ADD', 'DATE_SUB', 'ADDDATE', 'SUBDATE', 'DATEDIFF', 'TIMESTAMPDIFF', 'TIMESTAMPADD', 'LAST_DAY', 'STR_TO_DATE', 'DATE_FORMAT', 'TO_DAYS', 'FROM_DAYS',
  'MAKEDATE', 'UNIX_TIMESTAMP', 'FROM_UNIXTIME', 'TO_SECONDS', 'CONVERT_TZ',
  // values
  'COALESCE', 'IFNULL', 'NULLIF', 'IF', 'GREATEST', 'LEAST', 'ABS', 'ROUND', 'FLOOR', 'CEIL', 'CEILING', 'TRUNCATE', 'MOD',
  'LOWER', 'UPPER', 'LCASE', 'UCASE', 'LENGTH', 'CHAR_LENGTH', 'TRIM', 'LTRIM', 'RTRIM', 'LEFT', 'RIGHT', 'SUBSTRING', 'SUBSTR', 'CONCAT', 'JSON_UNQUOTE', 'JSON_EXTRACT',
]);
/** Functions that may be written without parentheses. */
const BARE_FUNCTIONS = new Set(['CURRENT_DATE', 'CURRENT_TIMESTAMP', 'CURRENT_TIME', 'LOCALTIME', 'LOCALTIMESTAMP', 'UTC_DATE', 'UTC_TIME', 'UTC_TIMESTAMP']);
const UNITS = new Set([
  'MICROSECOND', 'SECOND', 'MINUTE', 'HOUR', 'DAY', 'WEEK', 'MONTH', 'QUARTER', 'YEAR', 'SECOND_MICROSECOND', 'MINUTE_MICROSECOND', 'MINUTE_SECOND',
  'HOUR_MICROSECOND', 'HOUR_SECOND', 'HOUR_MINUTE', 'DAY_MICROSECOND', 'DAY_SECOND', 'DAY_MINUTE', 'DAY_HOUR', 'YEAR_MONTH',
]);
const CAST_TYPES = new Set(['DATE', 'DATETIME', 'TIME', 'SIGNED', 'UNSIGNED', 'DECIMAL', 'CHAR', 'INTEGER', 'INT']);
/** Words that can never name a column here (they would start or smuggle another construct). */
const RESERVED = new Set(['SELECT', 'FROM', 'WHERE', 'UNION', 'EXISTS', 'ALL', 'ANY', 'SOME', 'INTO', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'ROW', 'BINARY', 'COLLATE', 'MATCH', 'AGAINST', 'DEFAULT', 'VALUES', 'SYSDATE', 'INTERVAL', 'AND', 'OR', 'XOR', 'NOT', 'IS', 'IN', 'BETWEEN', 'LIKE', 'REGEXP', 'RLIKE', 'ESCAPE', 'DIV', 'MOD', 'NULL', 'TRUE', 'FALSE', 'UNKNOWN']);
const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=', '<=>']);

export type PredicateCheck = { ok: true; columns: string[] } | { ok: false; message: string };

class Refused extends Error {}

class Parser {
  private i = 0;
  readonly columns = new Set<string>();

  constructor(private readonly code: Token[]) {}

  private peek(offset = 0): Token | undefined {
    return this.code[this.i + offset];
  }

  private next(): Token | undefined {
    return this.code[this.i++];
  }

  private refuse(t: Token | undefined, why: string): never {
    throw new Refused(t ? `"${t.text}" at offset ${t.start}: ${why}` : `at the end: ${why}`);
  }

  private expect(text: string): void {
    const t = this.next();
    if (t?.text.toUpperCase() !== text) this.refuse(t, `expected "${text}"`);
  }

  parse(): void {
    if (this.code.length === 0) throw new Refused('is empty: give the condition that selects the rows to archive, e.g. "created_at < NOW() - INTERVAL 90 DAY"');
    this.or();
    if (this.i < this.code.length) this.refuse(this.peek(), 'unexpected');
  }

  private or(): void {
    this.xor();
    while (isKeyword(this.peek(), 'OR')) {
      this.next();
      this.xor();
    }
  }

  private xor(): void {
    this.and();
    while (isKeyword(this.peek(), 'XOR')) {
      this.next();
      this.and();
    }
  }

  private and(): void {
    this.not();
    while (isKeyword(this.peek(), 'AND')) {
      this.next();
      this.not();
    }
  }

  private not(): void {
    if (isKeyword(this.peek(), 'NOT') || this.peek()?.text === '!') {
      this.next();
      this.not();
      return;
    }
    this.predicate();
  }

  private predicate(): void {
    this.sum();
    for (;;) {
      const t = this.peek();
      if (t && COMPARISONS.has(t.text)) {
        this.next();
        this.sum();
        continue;
      }
      const negated = isKeyword(t, 'NOT') && isKeyword(this.peek(1), 'IN', 'BETWEEN', 'LIKE');
      const op = negated ? this.peek(1) : t;
      if (isKeyword(op, 'IN')) {
        if (negated) this.next();
        this.next();
        this.expect('(');
        if (isKeyword(this.peek(), 'SELECT', 'WITH', 'VALUES', 'TABLE')) this.refuse(this.peek(), 'subqueries are not allowed');
        this.literal();
        while (this.peek()?.text === ',') {
          this.next();
          this.literal();
        }
        this.expect(')');
        continue;
      }
      if (isKeyword(op, 'BETWEEN')) {
        if (negated) this.next();
        this.next();
        this.sum();
        this.expect('AND');
        this.sum();
        continue;
      }
      if (isKeyword(op, 'LIKE')) {
        if (negated) this.next();
        this.next();
        this.sum();
        if (isKeyword(this.peek(), 'ESCAPE')) {
          this.next();
          this.literal();
        }
        continue;
      }
      if (isKeyword(t, 'IS')) {
        this.next();
        if (isKeyword(this.peek(), 'NOT')) this.next();
        const v = this.next();
        if (!isKeyword(v, 'NULL', 'TRUE', 'FALSE', 'UNKNOWN')) this.refuse(v, 'IS takes NULL, TRUE, FALSE or UNKNOWN');
        continue;
      }
      if (t && (t.text === '||' || t.text === '&&')) this.refuse(t, `"${t.text}" means different things under different SQL modes: write OR / AND`);
      return;
    }
  }

  private sum(): void {
    this.product();
    while (this.peek()?.text === '+' || this.peek()?.text === '-') {
      this.next();
      this.product();
    }
  }

  private product(): void {
    this.unary();
    while (['*', '/', '%'].includes(this.peek()?.text ?? '') || isKeyword(this.peek(), 'DIV', 'MOD')) {
      this.next();
      this.unary();
    }
  }

  private unary(): void {
    if (this.peek()?.text === '-' || this.peek()?.text === '+') {
      this.next();
      this.unary();
      return;
    }
    this.primary();
  }

  private literal(): void {
    const t = this.next();
    if (t?.text === '-' && this.peek()?.kind === 'number') {
      this.next();
      return;
    }
    if (t?.kind === 'number' || t?.kind === 'string' || isKeyword(t, 'NULL', 'TRUE', 'FALSE')) return;
    if (isKeyword(t, 'DATE', 'TIME', 'TIMESTAMP') && this.peek()?.kind === 'string') {
      this.next();
      return;
    }
    this.refuse(t, 'expected a literal (a number, a string, NULL, TRUE, FALSE)');
  }

  private primary(): void {
    const t = this.peek();
    if (!t) this.refuse(t, 'expected a value');
    if (t.kind === 'number' || t.kind === 'string') {
      this.next();
      return;
    }
    if (t.kind === 'variable') this.refuse(t, 'variables are not allowed');
    if (t.text === '(') {
      this.next();
      if (isKeyword(this.peek(), 'SELECT', 'WITH', 'VALUES', 'TABLE')) this.refuse(this.peek(), 'subqueries are not allowed');
      this.or();
      this.expect(')');
      return;
    }
    if (t.kind === 'word' || t.kind === 'quoted') {
      const word = t.kind === 'word' ? t.text.toUpperCase() : null;
      if (word === 'NULL' || word === 'TRUE' || word === 'FALSE') {
        this.next();
        return;
      }
      if ((word === 'DATE' || word === 'TIME' || word === 'TIMESTAMP') && this.peek(1)?.kind === 'string') {
        this.next();
        this.next();
        return;
      }
      if (word === 'INTERVAL') {
        this.next();
        this.sum();
        const unit = this.next();
        if (!unit || unit.kind !== 'word' || !UNITS.has(unit.text.toUpperCase())) this.refuse(unit, 'expected an interval unit (DAY, MONTH, …)');
        return;
      }
      if (word === 'CAST') {
        this.next();
        this.expect('(');
        this.or();
        this.expect('AS');
        const type = this.next();
        if (!type || !CAST_TYPES.has(type.text.toUpperCase())) this.refuse(type, 'expected a type (DATE, DATETIME, SIGNED, …)');
        if (this.peek()?.text === '(') {
          this.next();
          this.literal();
          if (this.peek()?.text === ',') {
            this.next();
            this.literal();
          }
          this.expect(')');
        }
        this.expect(')');
        return;
      }
      if (this.peek(1)?.text === '(') {
        if (t.kind !== 'word' || !FUNCTIONS.has(word as string)) {
          this.refuse(t, word === 'SYSDATE' ? 'SYSDATE() is not fixed by the run\'s timestamp: use NOW()' : `function ${t.text}() is not allowed (only date, time and value functions whose result the run's fixed NOW() determines)`);
        }
        this.next();
        this.next();
        if (this.peek()?.text === ')') {
          this.next();
          return;
        }
        this.argument(word as string);
        while (this.peek()?.text === ',') {
          this.next();
          this.argument(word as string);
        }
        this.expect(')');
        return;
      }
      if (word !== null && BARE_FUNCTIONS.has(word)) {
        this.next();
        return;
      }
      if (this.peek(1)?.text === '.') this.refuse(t, 'qualified names are not allowed: name the table\'s own columns');
      if (word !== null && RESERVED.has(word)) this.refuse(t, `${t.text} is not allowed here`);
      this.next();
      this.columns.add(identifierName(t) as string);
      return;
    }
    this.refuse(t, 'unexpected');
  }

  /** TIMESTAMPDIFF(DAY, a, b) and friends take a unit as their first argument. */
  private argument(fn: string): void {
    const t = this.peek();
    if ((fn === 'TIMESTAMPDIFF' || fn === 'TIMESTAMPADD') && t?.kind === 'word' && UNITS.has(t.text.toUpperCase())) {
      this.next();
      return;
    }
    this.or();
  }
}

/** Checks an archive predicate; on success, the columns it reads. */
export function checkPredicate(where: string): PredicateCheck {
  const text = where.trim();
  let tokens: Token[];
  try {
    tokens = tokenize(text);
  } catch (error) {
    return { ok: false, message: `does not parse: ${(error as LexError).message}` };
  }
  for (const t of tokens) {
    if (t.kind === 'comment' || t.kind === 'execOpen') return { ok: false, message: 'contains a comment: remove it' };
    if (t.kind === 'punct' && t.text === ';') return { ok: false, message: 'contains ";": give one condition, not statements' };
  }
  const parser = new Parser(codeTokens(tokens));
  try {
    parser.parse();
  } catch (error) {
    if (error instanceof Refused) {
      const message = error.message;
      return { ok: false, message: message.startsWith('is empty') ? message : `does not parse: ${message}` };
    }
    throw error;
  }
  return { ok: true, columns: [...parser.columns] };
}
