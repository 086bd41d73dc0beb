/**
 * Reads mysqlbinlog's text output (what a point-in-time restore pipes into one client
 * session) statement by statement, knowing where in the binary log each one came from,
 * and keeps the replay inside its target database:
 *
 *   - every statement goes through confineStatement: names qualified with the source
 *     database are rewritten to the target, anything naming another database is refused,
 *     account management is dropped, DEFINERs become CURRENT_USER, events are disabled;
 *   - every row event (the base64 of `BINLOG '…'`) is decoded far enough to read its
 *     table map: a row event for any database other than the target stops the replay
 *     before the statement is complete (a server applies BINLOG row events with the
 *     BINLOG REPLAY privilege, without checking table privileges, so this check is ours);
 *   - the source's GTIDs are not replayed (`SET @@session.gtid_seq_no`; MySQL's GTID_NEXT
 *     becomes AUTOMATIC): the copy's transactions are new ones of the server that holds it.
 *
 * The same reader runs twice: first as a scan over the whole window (nothing is written;
 * the restore is refused with the statement, its position and the fix if anything cannot
 * be confined), then on the replay itself, where it applies the same rewrites and guards.
 * Pure: bytes in, text out. One file, over 400 lines, because the stream's state (the
 * position, the open statement, the session's definers and table maps) is shared by every
 * branch; split, each half would need the other's internals.
 */
import { confineStatement, createdObject, isStatementDml, type ConfineContext, type DefinedObjectType, type DefinerRecord } from './confine';
import { codeTokens, identifierName, isKeyword, tokenize } from '../sql/lexer';

export interface BinlogPosition {
  file: string;
  position: number;
}

export interface Refusal extends BinlogPosition {
  statement: string;
  reason: string;
  fix: string;
}

export interface ScanReport {
  statements: number;
  rewritten: Array<BinlogPosition & { statement: string; changes: string[] }>;
  skipped: Array<BinlogPosition & { statement: string; reason: string }>;
  refused: Refusal[];
  /** DML the server logged as statements (MIXED / STATEMENT format). */
  statementDml: number;
  rowEvents: number;
  definers: DefinerRecord[];
  /** Views, triggers, routines and events the window creates. */
  objectsCreated: Array<BinlogPosition & { type: DefinedObjectType; name: string }>;
}

export class ReplayRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(`${refusal.file}:${refusal.position}: ${refusal.reason}: ${refusal.statement}; ${refusal.fix}`);
  }
}

const STATEMENT_PREVIEW = 200;
const TABLE_MAP_EVENT = 19;
const FORMAT_DESCRIPTION_EVENT = 15;
const EVENT_HEADER = 19;

function preview(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > STATEMENT_PREVIEW ? `${flat.slice(0, STATEMENT_PREVIEW)}…` : flat;
}

const B64 = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/**
 * Walks the binlog events inside BINLOG statements' base64 (across lines and fragments)
 * and reports each table map's database.
 */
class RowEventWalker {
  private bits = 0;
  private bitCount = 0;
  private header = new Uint8Array(EVENT_HEADER);
  private headerLength = 0;
  private remaining = 0;
  private body: number[] | null = null;
  private bodyWanted = 0;
  events = 0;

  constructor(
    private readonly onTableMap: (database: string, table: string) => void,
    /** Every event header; table maps precede the row events that use them. */
    private readonly onEvent: (type: number) => void,
  ) {}

  reset(): void {
    this.bits = 0;
    this.bitCount = 0;
    this.headerLength = 0;
    this.remaining = 0;
    this.body = null;
  }

  pushBase64(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const v = B64[text.charCodeAt(i)] ?? -1;
      if (v < 0) continue; // newlines, padding
      this.bits = (this.bits << 6) | v;
      this.bitCount += 6;
      if (this.bitCount >= 8) {
        this.bitCount -= 8;
        this.byte((this.bits >> this.bitCount) & 0xff);
        this.bits &= (1 << this.bitCount) - 1;
      }
    }
  }

  private byte(b: number): void {
    if (this.remaining > 0) {
      this.remaining -= 1;
      if (this.body && this.body.length < this.bodyWanted) {
        this.body.push(b);
        if (this.body.length === this.bodyWanted) this.tableMap(this.body);
      }
      return;
    }
    this.header[this.headerLength++] = b;
    if (this.headerLength < EVENT_HEADER) return;
    this.headerLength = 0;
    this.events += 1;
    const type = this.header[4] as number;
    this.onEvent(type);
    const size = ((this.header[9] as number) | ((this.header[10] as number) << 8) | ((this.header[11] as number) << 16)) + (this.header[12] as number) * 0x1000000;
    this.remaining = Math.max(0, size - EVENT_HEADER);
    // Table map: table id (6) + flags (2), then db length, db, NUL, table length, table, NUL.
    this.body = type === TABLE_MAP_EVENT ? [] : null;
    this.bodyWanted = type === TABLE_MAP_EVENT ? Math.min(this.remaining, 8 + 1 + 64 * 4 + 1 + 1 + 64 * 4 + 1) : 0;
    if (this.body && this.remaining === 0) this.tableMap(this.body);
  }

  private tableMap(body: number[]): void {
    const decoder = new TextDecoder();
    const dbLength = body[8] ?? 0;
    const db = decoder.decode(Uint8Array.from(body.slice(9, 9 + dbLength)));
    const tableAt = 9 + dbLength + 1;
    const tableLength = body[tableAt] ?? 0;
    const table = decoder.decode(Uint8Array.from(body.slice(tableAt + 1, tableAt + 1 + tableLength)));
    this.body = null;
    this.onTableMap(db, table);
  }
}

type Mode =
  /** Read the window as it will be replayed (filtered and renamed by mysqlbinlog): collect, write nothing. */
  | 'scan'
  /** Read the whole window, every database: find statements on the source that the filter would drop. */
  | 'crossScan'
  /** The replay itself: rewrite and guard, emit what the client session runs. */
  | 'replay';

export interface ReplayStreamOptions {
  mode: Mode;
  context: ConfineContext;
  /** The first file mysqlbinlog reads (later ones are announced by Rotate events). */
  firstFile: string;
}

/**
 * Feed text chunks; get back the text to send on (replay mode). Throws ReplayRefused in
 * replay mode before the offending statement is complete.
 */
export class ReplayStream {
  private tail = '';
  private delimiter = ';';
  /** Lines of the statement being read. */
  private statement: string[] = [];
  /** A BINLOG '…' statement (held until its table maps are checked) or a fragment of one. */
  private binlogStatement: { kind: 'binlog' | 'fragment'; lines: string[]; flushed: boolean; sawRows: boolean } | null = null;
  private file: string;
  private position = 4;
  private statementFile: string;
  private statementPosition = 4;
  /** The default database of the statements that follow (crossScan: the original name). */
  private current: string | null = null;
  private readonly walker: RowEventWalker;
  /** For error messages: output line number -> binlog position of the statement there. */
  private outputLine = 0;
  private readonly marks: Array<{ line: number; file: string; position: number; statement: string }> = [];
  /** The source GTID of the last MySQL transaction passed on (its GTID_NEXT is not sent). */
  lastSourceGtid: string | null = null;
  readonly report: ScanReport = { statements: 0, rewritten: [], skipped: [], refused: [], statementDml: 0, rowEvents: 0, definers: [], objectsCreated: [] };

  constructor(private readonly options: ReplayStreamOptions) {
    this.file = options.firstFile;
    this.statementFile = options.firstFile;
    this.walker = new RowEventWalker(
      (db, table) => this.onTableMap(db, table),
      (type) => {
        if (this.binlogStatement && type !== TABLE_MAP_EVENT && type !== FORMAT_DESCRIPTION_EVENT) this.binlogStatement.sawRows = true;
      },
    );
  }

  push(chunk: string): string[] {
    const out: string[] = [];
    const lines = (this.tail + chunk).split('\n');
    this.tail = lines.pop() ?? '';
    for (const line of lines) this.line(line, out);
    return out;
  }

  finish(): string[] {
    const out: string[] = [];
    if (this.tail !== '') this.line(this.tail, out);
    this.tail = '';
    if (this.binlogStatement) this.endBinlogStatement(out);
    if (this.statement.length > 0) this.endStatement(out);
    return out;
  }

  /** The binlog position and statement at an output line (for "ERROR … at line N"). */
  positionAtLine(line: number): (BinlogPosition & { statement: string }) | null {
    let found: (BinlogPosition & { statement: string }) | null = null;
    for (const m of this.marks) {
      if (m.line > line) break;
      found = { file: m.file, position: m.position, statement: m.statement };
    }
    return found;
  }

  private emit(out: string[], text: string): void {
    if (this.options.mode !== 'replay') return;
    out.push(text);
    this.outputLine += (text.match(/\n/g) ?? []).length;
  }

  private line(line: string, out: string[]): void {
    if (this.binlogStatement) {
      this.binlogLine(line, out);
      return;
    }
    if (this.statement.length === 0) {
      if (line.startsWith('#')) {
        this.header(line);
        this.emit(out, line + '\n');
        return;
      }
      const delimiter = /^DELIMITER\s+(\S+)\s*$/.exec(line);
      if (delimiter?.[1]) {
        this.delimiter = delimiter[1];
        this.emit(out, line + '\n');
        return;
      }
      if (line.trim() === '') {
        this.emit(out, line + '\n');
        return;
      }
      this.statementFile = this.file;
      this.statementPosition = this.position;
      const fragment = /^SET @binlog_fragment_(\d+)\s*=\s*'/.exec(line);
      if (/^BINLOG '/.test(line) || fragment) {
        // A BINLOG statement is one event group; fragments of one group share a walker.
        if (!fragment || fragment[1] === '0') this.walker.reset();
        this.binlogStatement = { kind: fragment ? 'fragment' : 'binlog', lines: [], flushed: fragment !== null, sawRows: false };
        this.binlogLine(line, out);
        return;
      }
    }
    this.statement.push(line);
    if (line.trimEnd().endsWith(this.delimiter) && this.complete()) this.endStatement(out);
  }

  /** A candidate end: the delimiter at the end of a line, outside quotes and comments. */
  private complete(): boolean {
    const text = this.statement.join('\n');
    try {
      tokenize(text.slice(0, text.lastIndexOf(this.delimiter)));
      return true;
    } catch {
      return false;
    }
  }

  private header(line: string): void {
    const at = /^# at (\d+)/.exec(line);
    if (at?.[1]) this.position = Number(at[1]);
    const rotate = /\sRotate to (\S+)\s+pos: (\d+)/.exec(line);
    if (rotate?.[1]) this.file = rotate[1];
  }

  private where(): BinlogPosition {
    return { file: this.statementFile, position: this.statementPosition };
  }

  private mark(statement = ''): void {
    this.marks.push({ line: this.outputLine + 1, ...this.where(), statement: preview(statement) });
    if (this.marks.length > 100_000) this.marks.splice(0, 50_000);
  }

  private refuse(statement: string, reason: string, fix: string): void {
    const refusal: Refusal = { ...this.where(), statement: preview(statement), reason, fix };
    if (this.options.mode === 'replay') throw new ReplayRefused(refusal);
    if (this.report.refused.length < 50) this.report.refused.push(refusal);
  }

  private endStatement(out: string[]): void {
    const full = this.statement.join('\n');
    this.statement = [];
    const d = this.delimiter;
    const body = full.trimEnd().endsWith(d) ? full.trimEnd().slice(0, -d.length) : full;
    const suffix = full.trimEnd().endsWith(d) ? d : '';
    const sql = body.trim();
    if (sql === '') {
      this.emit(out, full + '\n');
      return;
    }
    // The source's GTIDs and server id stay with the source: the copy's transactions are new.
    // MySQL: a transaction's GTID_NEXT becomes AUTOMATIC, not nothing. After a BINLOG format
    // event the session would otherwise apply row events as ANONYMOUS, which a server with
    // GTID_MODE=ON refuses.
    const next = /^SET @@SESSION\.GTID_NEXT\s*=\s*'([0-9a-fA-F-]{36}:\d+)'/i.exec(sql);
    if (next?.[1]) {
      this.lastSourceGtid = next[1].toLowerCase();
      this.emit(out, `SET @@SESSION.GTID_NEXT='AUTOMATIC'${suffix}\n`);
      return;
    }
    if (
      /^\/\*M!\d+ SET @@session\.(gtid_domain_id|server_id|gtid_seq_no|skip_parallel_replication)=/.test(sql) ||
      /^(\/\*!\d+ )?SET @@SESSION\.(original_commit_timestamp|original_server_version|immediate_server_version)\s*=/i.test(sql)
    ) {
      return;
    }
    const use = /^use `((?:[^`]|``)+)`$/i.exec(sql);
    if (use?.[1] !== undefined) {
      this.current = use[1].replace(/``/g, '`');
      if (this.options.mode !== 'crossScan' && this.current !== this.options.context.target) {
        this.refuse(sql, `the default database is ${this.current}, not the target`, 'this is a bug in the restore plan: report it');
        return;
      }
      this.mark(sql);
      this.emit(out, full + '\n');
      return;
    }
    if (/^SET\s+(TIMESTAMP|INSERT_ID|LAST_INSERT_ID|@@session\.|@`|@'|@")/i.test(sql) || /^(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|XA )/i.test(sql) || /^\/\*!\d+ SET/.test(sql) || /^\/\*!\\C \S+ \*\/$/.test(sql)) {
      this.emit(out, full + '\n');
      return;
    }
    this.report.statements += 1;
    if (this.options.mode === 'crossScan') {
      this.crossCheck(sql);
      return;
    }
    if (isStatementDml(sql)) this.report.statementDml += 1;
    const outcome = confineStatement(sql, this.options.context);
    if (outcome.action === 'keep' || outcome.action === 'rewrite') {
      const created = createdObject(sql);
      if (created && this.report.objectsCreated.length < 200) this.report.objectsCreated.push({ ...this.where(), type: created.type, name: created.name });
    }
    switch (outcome.action) {
      case 'keep':
        this.collectDefiners(outcome.definers);
        this.mark(sql);
        this.emit(out, full + '\n');
        return;
      case 'rewrite':
        this.collectDefiners(outcome.definers);
        if (this.report.rewritten.length < 200) this.report.rewritten.push({ ...this.where(), statement: preview(sql), changes: outcome.changes });
        this.mark(sql);
        this.emit(out, `${outcome.text}\n${suffix}\n`);
        return;
      case 'skip':
        if (this.report.skipped.length < 200) this.report.skipped.push({ ...this.where(), statement: preview(sql), reason: outcome.reason });
        return;
      case 'refuse':
        this.refuse(sql, outcome.reason, outcome.fix);
        return;
    }
  }

  private collectDefiners(definers: DefinerRecord[]): void {
    for (const d of definers) {
      const known = this.report.definers.findIndex((x) => x.type === d.type && x.name === d.name);
      if (known >= 0) this.report.definers.splice(known, 1);
      this.report.definers.push(d);
    }
  }

  /**
   * Whole-window scan: a statement that changes the source while another database was the
   * default is dropped by mysqlbinlog's --database filter, and the copy would silently miss
   * it. Refuse instead.
   */
  private crossCheck(sql: string): void {
    const { source } = this.options.context;
    if (this.current === source) return;
    let code;
    try {
      code = codeTokens(tokenize(sql));
    } catch {
      return; // the filtered scan reports what cannot be read
    }
    const namesSource = code.some((t, i) => (t.kind === 'word' || t.kind === 'quoted') && identifierName(t) === source && code[i + 1]?.text === '.' && code[i - 1]?.text !== '.');
    const databaseLevel = isKeyword(code[0], 'CREATE', 'ALTER', 'DROP') && isKeyword(code[1], 'DATABASE', 'SCHEMA') && code.some((t) => identifierName(t) === source);
    if (namesSource || databaseLevel) {
      this.refuse(
        sql,
        `it changes ${source} while ${this.current === null ? 'no database' : this.current} was the default database; mysqlbinlog's database filter drops it, so a copy would silently miss it`,
        'restore to a point before it',
      );
    }
  }

  private binlogLine(line: string, out: string[]): void {
    const state = this.binlogStatement as NonNullable<ReplayStream['binlogStatement']>;
    const payload = state.lines.length === 0 ? line.replace(/^(BINLOG |SET @binlog_fragment_\d+\s*=\s*)'/, '') : line;
    const quote = payload.indexOf("'");
    if (this.options.mode !== 'crossScan') this.walker.pushBase64(quote < 0 ? payload : payload.slice(0, quote));
    state.lines.push(line);
    if (state.flushed) {
      if (state.lines.length === 1) this.mark('BINLOG row event');
      this.emit(out, line + '\n');
    } else if (state.sawRows) {
      // Every table map of the group has been read: the rest can stream.
      state.flushed = true;
      this.mark('BINLOG row event');
      this.emit(out, state.lines.join('\n') + '\n');
    }
    if (quote >= 0 && line.trimEnd().endsWith(this.delimiter)) this.endBinlogStatement(out);
  }

  private onTableMap(db: string, table: string): void {
    this.report.rowEvents += 1;
    if (this.options.mode === 'crossScan') return;
    if (db !== this.options.context.target) {
      this.refuse(`row event for ${db}.${table}`, `a row event for database ${db} reached the restore of ${this.options.context.target}`, 'this is a bug in the restore plan: report it');
    }
  }

  private endBinlogStatement(out: string[]): void {
    const state = this.binlogStatement as NonNullable<ReplayStream['binlogStatement']>;
    this.binlogStatement = null;
    if (!state.flushed) {
      this.mark('BINLOG row event');
      this.emit(out, state.lines.join('\n') + '\n');
    }
  }
}
