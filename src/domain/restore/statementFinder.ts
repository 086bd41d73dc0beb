/**
 * "Just before the bad statement": reads mysqlbinlog's decoded text (`--verbose
 * --base64-output=DECODE-ROWS`, `-vv` on MySQL; TZ=UTC) line by line and names the first
 * transaction holding a statement that matches, with the binlog position where that
 * transaction starts (a replay that stops there leaves it out).
 *
 * What a statement looks like depends on the product and the server's settings:
 *   - MariaDB writes the original statement of row events as an annotate event
 *     (`#Q> DELETE FROM orders WHERE …`, on by default);
 *   - MySQL writes it as a Rows_query event only with binlog_rows_query_log_events=ON
 *     (`# DELETE FROM orders WHERE …` after the event's header; off by default);
 *   - without either, only the decoded row events tell: `### DELETE FROM \`shop\`.\`orders\``;
 *   - statement-based logging writes the statement itself.
 * Transactions start at a GTID event: MariaDB names the GTID in the header
 * (`GTID 0-1-42`), MySQL in the `SET @@SESSION.GTID_NEXT= 'uuid:42'` that follows it.
 * Pure: lines in, a hit out.
 */

export interface StatementHit {
  file: string;
  /** Where the matching transaction starts: stop the replay here to leave it out. */
  position: number;
  time: string;
  gtid: string | null;
  /** The statement, or the row event's header when the binlog holds no statement text. */
  statement: string;
  from: 'statement' | 'row-event';
}

const SQL_VERB = /^(DELETE|UPDATE|INSERT|REPLACE|DROP|TRUNCATE|ALTER|RENAME|CREATE)\b/i;
const MARIADB_GTID = /\sGTID (\d+-\d+-\d+)/;
const MYSQL_GTID_HEADER = /\t(?:Anonymous_)?GTID\t/;
const MYSQL_GTID_NEXT = /^SET @@SESSION\.GTID_NEXT= '([0-9a-fA-F-]{36}:\d+)'/;

/** "#261122 14:03:06 server id 1 …" → 2026-11-22T14:03:06Z (the decoder runs with TZ=UTC). */
export function headerTime(line: string): string | null {
  const m = /^#(\d{2})(\d{2})(\d{2})\s+(\d{1,2}):(\d{2}):(\d{2})/.exec(line);
  if (!m) return null;
  return `20${m[1]}-${m[2]}-${m[3]}T${m[4]!.padStart(2, '0')}:${m[5]}:${m[6]}Z`;
}

export class StatementFinder {
  private file: string;
  private at: number;
  private tx: { file: string; position: number; time: string; gtid: string | null } | null = null;
  /** Inside a MySQL Rows_query event: its `# ` lines are the statement. */
  private rowsQuery = false;

  constructor(
    private readonly options: {
      firstFile: string;
      startPosition: number;
      matches: (text: string) => boolean;
      /** Only transactions at or after this UTC time (ISO) count. */
      after: string | null;
    },
  ) {
    this.file = options.firstFile;
    this.at = options.startPosition;
  }

  /** Feeds one decoded line; returns the hit when this line completes one. */
  line(line: string): StatementHit | null {
    if (line.startsWith('# at ')) {
      this.at = Number(line.slice(5));
      this.rowsQuery = false;
      return null;
    }
    if (/^#\d{6}\s/.test(line)) {
      this.header(line);
      return null;
    }
    if (line.startsWith('#Q> ')) return this.candidate(line.slice(4), 'statement');
    if (this.rowsQuery && line.startsWith('# ')) return this.candidate(line.slice(2), 'statement');
    if (line.startsWith('### ')) {
      const row = line.slice(4);
      return SQL_VERB.test(row) ? this.candidate(row, 'row-event') : null;
    }
    if (line.startsWith('#')) return null;
    const next = MYSQL_GTID_NEXT.exec(line);
    if (next?.[1]) {
      if (this.tx && this.tx.gtid === null) this.tx.gtid = next[1];
      return null;
    }
    return SQL_VERB.test(line) ? this.candidate(line, 'statement') : null;
  }

  private header(line: string): void {
    const maria = MARIADB_GTID.exec(line);
    if (maria?.[1]) this.tx = { file: this.file, position: this.at, time: headerTime(line) ?? '', gtid: maria[1] };
    else if (MYSQL_GTID_HEADER.test(line)) this.tx = { file: this.file, position: this.at, time: headerTime(line) ?? '', gtid: null };
    const rotate = /Rotate to (\S+)\s+pos: (\d+)/.exec(line);
    if (rotate?.[1]) this.file = rotate[1];
    this.rowsQuery = /\tRows_query\s*$/.test(line);
  }

  private candidate(text: string, from: StatementHit['from']): StatementHit | null {
    const tx = this.tx;
    if (!tx || !this.options.matches(text)) return null;
    if (this.options.after && tx.time < this.options.after) return null;
    return { ...tx, statement: text.slice(0, 300), from };
  }
}
