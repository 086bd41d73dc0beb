/**
 * Takes one database out of a multi-database dump and renames it on the way, so a full
 * backup can be loaded next to the live data ("shop" restored as "shop_restored").
 * mysqldump cannot rename; the stream names the database in:
 *   -- Current Database: `shop`        section start (every database has one or two)
 *   CREATE DATABASE ... `shop` ...;    dropped: the restore creates its target itself
 *   USE `shop`;                        rewritten to the new name
 *   SET @@SESSION.SQL_LOG_BIN= 0;      dropped (MySQL), as is SET @@GLOBAL.GTID_PURGED
 *   DDL statements                     read whole (they span lines and DELIMITER blocks) and
 *                                      confined like the binlog's statements: `shop`.t becomes
 *                                      `shop_restored`.t (or a restored trigger would write into
 *                                      the live database), DEFINERs become CURRENT_USER (the
 *                                      originals are recorded to be put back), events DISABLED
 * Data lines (INSERT, and MariaDB's one-tuple-per-line rows) pass through untouched at
 * memchr speed; the other databases' sections are dropped. Pure.
 */
import { confineStatement, createdObject, type DefinedObjectType, type DefinerRecord } from './restore/confine';
import { codeTokens, identifierName, stringValue, tokenize } from './sql/lexer';

/** Session settings a routine, trigger, view or event was dumped under (and must be created under). */
export interface ObjectSession {
  sqlMode?: string;
  characterSetClient?: string;
  collationConnection?: string;
  timeZone?: string;
}

/**
 * A schema object taken out of the load stream: created afterwards by the restore's
 * administrator account (which may set DEFINERs and create triggers and routines while
 * binary logging is on), renamed to the target, events disabled.
 */
export interface RoutedObject {
  type: DefinedObjectType;
  name: string;
  /** As the dump wrote it (null: none, the creator's account). */
  definer: string | null;
  /** The statement confined to the target, with DEFINER=CURRENT_USER where it had one. */
  sql: string;
  session: ObjectSession;
}

const TRACKED: Record<string, keyof ObjectSession> = {
  sql_mode: 'sqlMode',
  character_set_client: 'characterSetClient',
  collation_connection: 'collationConnection',
  time_zone: 'timeZone',
};

const NEWLINE = 0x0a;
const HEAD = 16;
const MAX_DDL_LINE = 64 * 1024 * 1024;
const RE_SERVER_STATE = /^(SET @MYSQLDUMP_TEMP_LOG_BIN\s*=|SET @@SESSION\.SQL_LOG_BIN\s*=|SET @@GLOBAL\.GTID_PURGED\s*=)/i;
const RE_SECTION = /^-- Current Database: `((?:[^`]|``)+)`/;
const RE_CREATE = /^CREATE DATABASE /;
const RE_USE = /^USE `((?:[^`]|``)+)`;/;
const RE_DELIMITER = /^DELIMITER\s+(\S+)\s*$/;

export class DumpDatabaseFilter {
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  /** null: the global header; else the database whose section we are in. */
  private section: string | null = null;
  private line = new Uint8Array(4096);
  private lineLength = 0;
  /** Inside a data line already decided: pass (true) or drop (false) until the newline. */
  private streaming: boolean | null = null;
  /** DDL statements of the source section that were rewritten (names, definers, events). */
  rewrittenReferences = 0;
  /** Objects whose DEFINER became CURRENT_USER, with the original. */
  readonly definers: DefinerRecord[] = [];
  /** DDL that names other databases (kept: the restore's account decides what it may read). */
  readonly warnings: string[] = [];
  /** With routeObjects: views, triggers, routines and events taken out of the stream, in dump order. */
  readonly objects: RoutedObject[] = [];
  /** Lines of a DDL statement not yet complete, and the statement delimiter in force. */
  private pending: string[] = [];
  private delimiter = ';';
  private session: ObjectSession = {};
  private readonly saved = new Map<string, string | undefined>();

  constructor(
    private readonly source: string,
    private readonly target: string,
    /** Databases on the server the dump is loaded into (to tell db.table from alias.column). */
    private readonly schemas: ReadonlySet<string> = new Set(),
    private readonly options: { routeObjects?: boolean } = {},
  ) {}

  /** Follows the dump's SET statements for sql_mode, character sets and time zone. */
  private trackSession(sql: string): void {
    if (!/\bSET\b/i.test(sql)) return;
    let code;
    try {
      code = codeTokens(tokenize(sql));
    } catch {
      return;
    }
    if (code[0]?.text.toUpperCase() !== 'SET') return;
    for (let i = 1; i + 2 < code.length + 1; ) {
      const name = code[i];
      const value = code[i + 2];
      if (!name || code[i + 1]?.text !== '=' || !value) break;
      const variable = name.kind === 'variable' ? name.text.toLowerCase() : (identifierName(name) ?? '').toLowerCase();
      if (variable.startsWith('@') && !variable.startsWith('@@') && value.kind === 'variable' && value.text.startsWith('@@')) {
        const key = TRACKED[value.text.slice(2).toLowerCase().replace(/^session\./, '')];
        if (key) this.saved.set(variable, this.session[key]);
      } else {
        const key = TRACKED[variable.replace(/^@@(session\.)?/, '')];
        if (key && value.kind === 'string') this.session = { ...this.session, [key]: stringValue(value) };
        else if (key && value.kind === 'variable' && !value.text.startsWith('@@')) {
          const restored = this.saved.get(value.text.toLowerCase());
          const next = { ...this.session };
          if (restored === undefined) delete next[key];
          else next[key] = restored;
          this.session = next;
        }
      }
      i += 3;
      if (code[i]?.text !== ',') break;
      i += 1;
    }
  }

  private wanted(): boolean {
    return this.section === null || this.section === this.source;
  }

  private append(bytes: Uint8Array): void {
    if (this.lineLength + bytes.length > this.line.length) {
      const bigger = new Uint8Array(Math.max(this.line.length * 2, this.lineLength + bytes.length));
      bigger.set(this.line.subarray(0, this.lineLength));
      this.line = bigger;
    }
    this.line.set(bytes, this.lineLength);
    this.lineLength += bytes.length;
  }

  /** Data lines: a multi-row INSERT or one row of MariaDB's tuple-per-line format. */
  private isDataLine(): boolean {
    const first = this.line[0];
    if (first === 0x28 /* ( */) return true;
    const insert = 'INSERT INTO ';
    if (this.lineLength < insert.length) return false;
    for (let k = 0; k < insert.length; k++) if (this.line[k] !== insert.charCodeAt(k)) return false;
    return true;
  }

  /** Is a data line starting at chunk[i] (with at least HEAD bytes available)? */
  private static dataAt(chunk: Uint8Array, i: number): boolean {
    if (chunk[i] === 0x28 /* ( */) return true;
    const insert = 'INSERT INTO ';
    for (let k = 0; k < insert.length; k++) if (chunk[i + k] !== insert.charCodeAt(k)) return false;
    return true;
  }

  /**
   * Feed a chunk; returns the bytes to pass on. Consecutive passing data lines come back
   * as ONE view into the chunk: a dump is millions of short row lines, and handing each
   * on separately would cost more than the load itself.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let run = -1; // start of the pending run of passing bytes in this chunk
    const flush = (end: number) => {
      if (run >= 0 && end > run) out.push(chunk.subarray(run, end));
      run = -1;
    };
    let i = 0;
    while (i < chunk.length) {
      if (this.streaming !== null) {
        const nl = chunk.indexOf(NEWLINE, i);
        const end = nl === -1 ? chunk.length : nl + 1;
        if (this.streaming) {
          if (run < 0) run = i;
        } else {
          flush(i);
        }
        if (nl !== -1) this.streaming = null;
        i = end;
        continue;
      }
      if (this.lineLength === 0 && this.pending.length === 0 && chunk.length - i >= HEAD && DumpDatabaseFilter.dataAt(chunk, i)) {
        this.streaming = this.wanted();
        continue; // the streaming branch takes the line
      }
      flush(i);
      const nl = chunk.indexOf(NEWLINE, i);
      const lineEnd = nl === -1 ? chunk.length : nl;
      if (this.lineLength < HEAD) {
        // A line split across chunks: collect enough to tell data from DDL.
        const take = Math.min(lineEnd - i, HEAD - this.lineLength);
        this.append(chunk.subarray(i, i + take));
        i += take;
        if (this.lineLength === HEAD && this.pending.length === 0 && this.isDataLine()) {
          const pass = this.wanted();
          if (pass) out.push(this.line.slice(0, this.lineLength));
          this.lineLength = 0;
          this.streaming = pass;
          continue;
        }
        if (i < lineEnd) continue;
      } else {
        if (this.lineLength + (lineEnd - i) > MAX_DDL_LINE) throw new Error('a non-data line of the dump is longer than 64 MiB');
        this.append(chunk.subarray(i, lineEnd));
        i = lineEnd;
      }
      if (nl !== -1 && i === nl) {
        out.push(...this.endLine(true));
        i = nl + 1;
      }
    }
    flush(chunk.length);
    return out;
  }

  finish(): Uint8Array[] {
    const out = this.lineLength > 0 ? this.endLine(false) : [];
    if (this.pending.length > 0) out.push(...this.endStatement());
    return out;
  }

  private endLine(withNewline: boolean): Uint8Array[] {
    const data = this.isDataLine();
    const text = this.decoder.decode(this.line.subarray(0, this.lineLength));
    this.lineLength = 0;
    const nl = withNewline ? '\n' : '';
    if (this.pending.length === 0) {
      const section = RE_SECTION.exec(text);
      if (section?.[1] !== undefined) {
        this.section = section[1].replace(/``/g, '`');
        return this.wanted() ? [this.encoder.encode(`-- Current Database: \`${this.target}\` (restored from \`${this.source}\`)${nl}`)] : [];
      }
      if (!this.wanted()) return [];
      // mysqldump turns binary logging off for its load and may set GTID_PURGED. A restore
      // next to live data is logged like any write (a replica must have the tables a swap
      // renames), and the server's own GTID history is not the dump's to change.
      if (RE_SERVER_STATE.test(text)) return [];
      if (this.section !== null && RE_CREATE.test(text)) return [];
      const use = RE_USE.exec(text);
      if (use?.[1] !== undefined) return [this.encoder.encode(`USE \`${this.target.replace(/`/g, '``')}\`;${nl}`)];
      const delimiter = RE_DELIMITER.exec(text);
      if (delimiter?.[1]) this.delimiter = delimiter[1];
      // Data, comments, delimiters, and everything outside the source's section pass as they are.
      if (!data && !delimiter) this.trackSession(text);
      if (data || delimiter || this.section !== this.source || text.startsWith('--') || text.trim() === '') return [this.encoder.encode(text + nl)];
    } else if (!this.wanted()) {
      return [];
    }
    this.pending.push(text + nl);
    return text.trimEnd().endsWith(this.delimiter) && this.complete() ? this.endStatement() : [];
  }

  /** The delimiter ends the statement only outside quotes and comments. */
  private complete(): boolean {
    const statement = this.pending.join('');
    try {
      tokenize(statement.slice(0, statement.lastIndexOf(this.delimiter)));
      return true;
    } catch {
      return false;
    }
  }

  private endStatement(): Uint8Array[] {
    const statement = this.pending.join('');
    this.pending = [];
    const end = statement.lastIndexOf(this.delimiter);
    const sql = end >= 0 && statement.slice(end + this.delimiter.length).trim() === '' ? statement.slice(0, end) : statement;
    const tail = statement.slice(sql.length);
    this.trackSession(sql);
    const outcome = confineStatement(sql, { source: this.source, target: this.target, schemas: this.schemas, otherDatabases: 'keep' });
    const created = this.options.routeObjects ? createdObject(sql) : null;
    // Views are routed only in their final form (the early placeholder has no DEFINER).
    if (created && (created.type !== 'VIEW' || created.definer !== null)) {
      const confined = outcome.action === 'rewrite' || outcome.action === 'keep' ? outcome.text : sql;
      if (outcome.action === 'refuse' && this.warnings.length < 50) this.warnings.push(`${outcome.reason}: ${sql.replace(/\s+/g, ' ').trim().slice(0, 200)}`);
      this.objects.push({ type: created.type, name: created.name, definer: created.definer, sql: confined.trim(), session: { ...this.session } });
      return [];
    }
    if (outcome.action === 'rewrite') {
      this.rewrittenReferences += 1;
      for (const d of outcome.definers) this.definers.push(d);
      return [this.encoder.encode(outcome.text + tail)];
    }
    if (outcome.action === 'refuse' && this.warnings.length < 50) this.warnings.push(`${outcome.reason}: ${sql.replace(/\s+/g, ' ').trim().slice(0, 200)}`);
    return [this.encoder.encode(statement)];
  }
}
