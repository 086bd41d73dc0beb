/**
 * Reads a mysqldump / mariadb-dump stream as it flows past, without keeping it, and
 * collects what the manifest needs: the snapshot's binlog file + position and GTID set
 * (both dialects, wherever in the stream they appear: MariaDB 10.11 writes the GTID line
 * at the END), the databases, tables and views, and the exact number of rows dumped per
 * table (counted from the INSERT tuples, so they match the snapshot, not a later count).
 *
 * Pure (no Node APIs); byte-level so that multi-gigabyte dumps cost one pass and
 * constant memory. We write this ourselves because no library parses dump streams
 * incrementally, and counting rows from the dump is what makes the row counts exact.
 */
import type { TableEntry } from './manifest';

export interface DumpFacts {
  binlogFile: string | null;
  binlogPosition: number | null;
  gtidSet: string | null;
  databases: string[];
  tables: TableEntry[];
  /** `db.view` names. */
  views: string[];
  /** MariaDB >= 10.11.8 / 11.x start the dump with a sandbox-mode line that MySQL clients reject. */
  mariadbSandboxHeader: boolean;
  /** True once the trailer "-- Dump completed" was seen: a truncated dump lacks it. */
  completed: boolean;
}

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const QUOTE = 0x27;
const BACKTICK = 0x60;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;
const INSERT_PREFIX = 'INSERT INTO ';
const VALUES = 'VALUES';
const MAX_LINE = 1 << 20;

/**
 * values:      tuples on one line, "VALUES (1,'a'),(2,'b');" (mysqldump, older MariaDB): byte by byte.
 * valuesLines: one tuple per line, "VALUES\n(1,'a'),\n(2,'b');\n" (MariaDB >= 10.11.8): raw newlines
 *              never occur inside values (the dump escapes them), so each line is a row and
 *              the statement ends on a line ending in ";": counted at memchr speed.
 */
type Mode = 'line' | 'insertHead' | 'afterValues' | 'values' | 'valuesLines' | 'skipToEol';

const RE_USE = /^USE `((?:[^`]|``)+)`;/;
const RE_TABLE = /^-- Table structure for table `((?:[^`]|``)+)`/;
const RE_VIEW = /^-- Final view structure for view `((?:[^`]|``)+)`/;
const RE_CHANGE_MASTER = /CHANGE MASTER TO MASTER_LOG_FILE='([^']+)',\s*MASTER_LOG_POS=(\d+)/;
const RE_CHANGE_SOURCE = /CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='([^']+)',\s*SOURCE_LOG_POS=(\d+)/;
const RE_GTID_SLAVE_POS = /SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'/;
const RE_GTID_PURGED_START = /SET @@GLOBAL\.GTID_PURGED\s*=/i;
const RE_INSERT_TABLE = /^INSERT INTO `((?:[^`]|``)+)`/;
const RE_SANDBOX = /^\/\*M!999999\\- enable the sandbox mode \*\//;
const RE_COMPLETED = /^-- Dump completed/;

function unescapeBackticks(name: string): string {
  return name.replace(/``/g, '`');
}

export class DumpScanner {
  private mode: Mode = 'line';
  private line = new Uint8Array(4096);
  private lineLength = 0;
  private lineNumber = 0;
  private inBacktick = false;
  private inString = false;
  private escaped = false;
  private depth = 0;
  private lastByte = 0;
  private currentDatabase: string | null = null;
  private currentRows: TableEntry | null = null;
  private pendingGtidPurged: string | null = null;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly tables = new Map<string, TableEntry>();
  private readonly facts: DumpFacts = {
    binlogFile: null,
    binlogPosition: null,
    gtidSet: null,
    databases: [],
    tables: [],
    views: [],
    mariadbSandboxHeader: false,
    completed: false,
  };

  /** Feed the next chunk of the (uncompressed) dump. */
  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      if (this.mode === 'valuesLines') {
        i = this.valuesLines(chunk, i);
        continue;
      }
      const b = chunk[i] as number;
      switch (this.mode) {
        case 'afterValues':
          if (b === NEWLINE) {
            this.mode = 'valuesLines';
            this.lastByte = NEWLINE;
          } else {
            this.mode = 'values';
            i = this.valuesRun(chunk, i);
          }
          break;
        case 'values':
          i = this.valuesRun(chunk, i);
          break;
        case 'skipToEol':
          if (b === NEWLINE) this.mode = 'line';
          break;
        case 'insertHead':
          this.insertHeadByte(b);
          break;
        default:
          this.lineByte(b);
      }
    }
  }

  /** Call at end of stream; returns what was found. */
  finish(): DumpFacts {
    if (this.mode === 'line' && this.lineLength > 0) this.endLine();
    this.facts.tables = [...this.tables.values()];
    return {
      ...this.facts,
      databases: [...this.facts.databases],
      tables: this.facts.tables.map((t) => ({ ...t })),
      views: [...this.facts.views],
    };
  }

  private append(b: number): void {
    if (this.lineLength >= MAX_LINE) return; // very long non-data lines: the head is enough
    if (this.lineLength === this.line.length) {
      const bigger = new Uint8Array(Math.min(this.line.length * 2, MAX_LINE));
      bigger.set(this.line);
      this.line = bigger;
    }
    this.line[this.lineLength++] = b;
  }

  private lineByte(b: number): void {
    if (b === NEWLINE) {
      this.endLine();
      return;
    }
    this.append(b);
    if (this.lineLength === INSERT_PREFIX.length && this.lineStartsWith(INSERT_PREFIX)) {
      this.mode = 'insertHead';
      this.inBacktick = false;
    }
  }

  private lineStartsWith(prefix: string): boolean {
    for (let i = 0; i < prefix.length; i++) {
      if (this.line[i] !== prefix.charCodeAt(i)) return false;
    }
    return true;
  }

  private lineEndsWith(suffix: string): boolean {
    const start = this.lineLength - suffix.length;
    if (start < 0) return false;
    for (let i = 0; i < suffix.length; i++) {
      if (this.line[start + i] !== suffix.charCodeAt(i)) return false;
    }
    return true;
  }

  private insertHeadByte(b: number): void {
    this.append(b);
    if (b === BACKTICK) this.inBacktick = !this.inBacktick;
    if (!this.inBacktick && b === 0x53 /* S */ && this.lineEndsWith(VALUES)) {
      const head = this.decoder.decode(this.line.subarray(0, this.lineLength));
      const match = RE_INSERT_TABLE.exec(head);
      const table = match?.[1] !== undefined ? unescapeBackticks(match[1]) : '?';
      this.currentRows = this.tableEntry(this.currentDatabase ?? '?', table);
      this.lineLength = 0;
      this.depth = 0;
      this.inString = false;
      this.escaped = false;
      this.mode = 'afterValues';
    }
  }

  /**
   * The tuples of a one-line INSERT, from `from` on: one tight loop over local state (this
   * is where a mysqldump stream spends its bytes). Returns the index of the last byte
   * consumed: the statement's ";" or the chunk's end.
   */
  private valuesRun(chunk: Uint8Array, from: number): number {
    let inString = this.inString;
    let escaped = this.escaped;
    let depth = this.depth;
    let rows = 0;
    let i = from;
    let ended = false;
    for (; i < chunk.length; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          continue;
        }
        // Inside a string only the closing quote matters: a quote after an even run of
        // backslashes. Found at memchr speed, the run counted backwards.
        const quote = chunk.indexOf(QUOTE, i);
        const stop = quote === -1 ? chunk.length : quote;
        let run = 0;
        while (stop - run - 1 >= i && chunk[stop - run - 1] === BACKSLASH) run++;
        if (quote === -1) {
          escaped = run % 2 === 1;
          i = chunk.length - 1;
        } else {
          inString = run % 2 === 1;
          i = quote;
        }
        continue;
      }
      const b = chunk[i] as number;
      if (b === QUOTE) {
        inString = true;
      } else if (b === OPEN) {
        if (++depth === 1) rows += 1;
      } else if (b === CLOSE) {
        depth -= 1;
      } else if (b === SEMICOLON && depth === 0) {
        ended = true;
        break;
      }
    }
    if (this.currentRows) this.currentRows.rows += rows;
    this.inString = inString;
    this.escaped = escaped;
    this.depth = depth;
    if (ended) {
      this.currentRows = null;
      this.mode = 'skipToEol';
      return i;
    }
    return chunk.length - 1;
  }

  /** Returns the index of the last byte consumed. */
  private valuesLines(chunk: Uint8Array, from: number): number {
    const nl = chunk.indexOf(NEWLINE, from);
    if (nl === -1) {
      if (chunk.length > from) this.lastByte = chunk[chunk.length - 1] as number;
      return chunk.length - 1;
    }
    const before = nl > from ? (chunk[nl - 1] as number) : this.lastByte;
    if (this.currentRows) this.currentRows.rows += 1;
    if (before === SEMICOLON) {
      this.currentRows = null;
      this.mode = 'line';
    }
    this.lastByte = NEWLINE;
    return nl;
  }

  private tableEntry(database: string, table: string): TableEntry {
    const key = `${database}\u0000${table}`;
    let entry = this.tables.get(key);
    if (!entry) {
      entry = { database, table, rows: 0 };
      this.tables.set(key, entry);
    }
    return entry;
  }

  private endLine(): void {
    const text = this.decoder.decode(this.line.subarray(0, this.lineLength));
    this.lineLength = 0;
    this.lineNumber += 1;
    this.inspectLine(text);
  }

  private inspectLine(text: string): void {
    if (this.pendingGtidPurged !== null) {
      this.pendingGtidPurged += '\n' + text;
      if (text.includes(';')) this.finishGtidPurged();
      return;
    }
    if (this.lineNumber === 1 && RE_SANDBOX.test(text)) {
      this.facts.mariadbSandboxHeader = true;
      return;
    }
    let m = RE_USE.exec(text);
    if (m?.[1] !== undefined) {
      const db = unescapeBackticks(m[1]);
      this.currentDatabase = db;
      if (!this.facts.databases.includes(db)) this.facts.databases.push(db);
      return;
    }
    m = RE_TABLE.exec(text);
    if (m?.[1] !== undefined) {
      this.tableEntry(this.currentDatabase ?? '?', unescapeBackticks(m[1]));
      return;
    }
    m = RE_VIEW.exec(text);
    if (m?.[1] !== undefined) {
      const name = `${this.currentDatabase ?? '?'}.${unescapeBackticks(m[1])}`;
      if (!this.facts.views.includes(name)) this.facts.views.push(name);
      return;
    }
    m = RE_CHANGE_MASTER.exec(text) ?? RE_CHANGE_SOURCE.exec(text);
    if (m?.[1] !== undefined && m[2] !== undefined) {
      this.facts.binlogFile = m[1];
      this.facts.binlogPosition = Number(m[2]);
      return;
    }
    m = RE_GTID_SLAVE_POS.exec(text);
    if (m?.[1] !== undefined) {
      this.facts.gtidSet = m[1];
      return;
    }
    if (RE_GTID_PURGED_START.test(text)) {
      this.pendingGtidPurged = text;
      if (text.includes(';')) this.finishGtidPurged();
      return;
    }
    if (RE_COMPLETED.test(text)) this.facts.completed = true;
  }

  private finishGtidPurged(): void {
    // MySQL: SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'uuid:1-5,\nuuid2:1-3'; the set may span
    // lines, each continuation commented ("-- ") with --set-gtid-purged=COMMENTED.
    const text = this.pendingGtidPurged ?? '';
    this.pendingGtidPurged = null;
    const quoted = [...text.matchAll(/'([^']*)'/g)].map((m) => m[1] ?? '').filter((v) => v !== '+');
    const last = quoted[quoted.length - 1];
    // MySQL 9 writes the set as '+uuid:1-5' (add it to what the server has): the set itself is without the '+'.
    if (last !== undefined) this.facts.gtidSet = last.replace(/^\s*--\s?/gm, '').replace(/\s+/g, '').replace(/^\+/, '');
  }
}
