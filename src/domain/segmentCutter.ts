/**
 * Where a growing binlog file may be cut: after an event that ends a transaction (XID,
 * COMMIT or ROLLBACK, a DDL statement on its own after its GTID) or any event outside
 * one, so that a published segment never holds half a transaction. Walks the v4 event
 * headers of MariaDB and MySQL as the bytes arrive (constant memory), reading only the
 * bodies it needs: the format description (checksum), small Query events (BEGIN/COMMIT)
 * and GTID events (MariaDB's standalone flag, the GTIDs a segment holds). Pure.
 */
import type { GtidInterval } from './binlogScanner';

const HEADER = 19;
const STOP_EVENT = 3;
const QUERY_EVENT = 2;
const ROTATE_EVENT = 4;
const FORMAT_DESCRIPTION_EVENT = 15;
const XID_EVENT = 16;
const MYSQL_GTID_EVENT = 33;
const MYSQL_ANONYMOUS_GTID_EVENT = 34;
const XA_PREPARE_EVENT = 38;
/** MySQL binlog_transaction_compression: the whole transaction, compressed, in one event after its GTID. */
const TRANSACTION_PAYLOAD_EVENT = 40;
/** MySQL 8.3+: a GTID with a tag (its body is serialized differently; counted, not decoded). */
const MYSQL_GTID_TAGGED_EVENT = 42;
const MARIADB_GTID_EVENT = 162;
/** Query events this small are read whole (BEGIN, COMMIT, ROLLBACK are tiny); bigger ones are statements. */
const SMALL_QUERY = 1024;

function u32(b: Uint8Array, o: number): number {
  return ((b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16)) + (b[o + 3] as number) * 0x1000000;
}

function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) + (BigInt(u32(b, o + 4)) << 32n);
}

function uuidAt(b: Uint8Array, o: number): string {
  let h = '';
  for (let i = o; i < o + 16; i++) h += (b[i] as number).toString(16).padStart(2, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface SegmentFacts {
  events: number;
  transactions: number;
  firstEventTime: string | null;
  lastEventTime: string | null;
  gtids: GtidInterval[];
}

class FactsBuilder {
  events = 0;
  transactions = 0;
  first: number | null = null;
  last: number | null = null;
  gtids = new Map<string, GtidInterval>();

  gtid(source: string, id: string, time: number): void {
    const g = this.gtids.get(source);
    if (g) g.last = id;
    else this.gtids.set(source, { source, first: id, last: id });
    this.transactions += 1;
    if (this.first === null) this.first = time;
    this.last = time;
  }

  absorb(other: FactsBuilder): void {
    this.events += other.events;
    this.transactions += other.transactions;
    if (this.first === null) this.first = other.first;
    if (other.last !== null) this.last = other.last;
    for (const g of other.gtids.values()) {
      const mine = this.gtids.get(g.source);
      if (mine) mine.last = g.last;
      else this.gtids.set(g.source, { ...g });
    }
  }

  facts(): SegmentFacts {
    const iso = (t: number | null) => (t === null ? null : new Date(t * 1000).toISOString());
    return { events: this.events, transactions: this.transactions, firstEventTime: iso(this.first), lastEventTime: iso(this.last), gtids: [...this.gtids.values()].map((g) => ({ ...g })) };
  }
}

type TxState = 'none' | 'afterGtid' | 'standalone' | 'open';

/**
 * Walks a binlog file as it grows and says how far it may be cut: after the last event
 * that ends a transaction (or any event outside one). A segment that ended inside a
 * transaction would replay half of it. Bytes before `resumeAt` were archived by an
 * earlier run: they are walked (the transaction state needs them) but not handed out, and
 * `resumeAt` must fall between transactions, or the archive does not line up with this
 * file.
 */
export class SegmentCutter {
  private offset = 0;
  private magic = 0;
  private header = new Uint8Array(HEADER);
  private headerLength = 0;
  private body: Uint8Array | null = null;
  private bodyLength = 0;
  private skip = 0;
  private type = 0;
  private time = 0;
  private serverId = 0;
  private eventStart = 0;
  private checksum = 0;
  private tx: TxState = 'none';
  private queryRead = false;
  private committed = new FactsBuilder();
  private open = new FactsBuilder();
  /** Offset after the last event that may end a segment. */
  private safe: number;
  private taken: number;
  private sawEnd = false;
  private alignedAtResume: boolean;

  constructor(readonly file: string, readonly resumeAt = 0) {
    this.safe = resumeAt === 0 ? 0 : -1;
    this.taken = resumeAt;
    this.alignedAtResume = resumeAt === 0;
  }

  /** Bytes walked so far (the local copy's length as far as it was pushed). */
  get walked(): number {
    return this.offset;
  }

  /** Where the next segment may end; -1 until `resumeAt` was reached on a boundary. */
  get safeEnd(): number {
    return this.safe;
  }

  get publishedEnd(): number {
    return this.taken;
  }

  /** The file's last event (Rotate or Stop) is in and nothing is left open. */
  get closed(): boolean {
    return this.sawEnd && this.tx === 'none' && this.safe === this.offset;
  }

  /** The stream passed `resumeAt` without an event boundary there: the archive and this file disagree. */
  get misaligned(): boolean {
    return !this.alignedAtResume && this.offset > this.resumeAt;
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.magic < 4) {
        this.magic += 1;
        this.offset += 1;
        i += 1;
        if (this.magic === 4) this.atBoundary();
        continue;
      }
      if (this.body) {
        const n = Math.min(this.body.length - this.bodyLength, chunk.length - i);
        this.body.set(chunk.subarray(i, i + n), this.bodyLength);
        this.bodyLength += n;
        this.offset += n;
        i += n;
        if (this.bodyLength === this.body.length) {
          const keep = this.body;
          this.body = null;
          this.onBody(keep);
          if (this.skip === 0) this.endEvent();
        }
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        this.offset += n;
        i += n;
        if (this.skip === 0) this.endEvent();
        continue;
      }
      const n = Math.min(HEADER - this.headerLength, chunk.length - i);
      this.header.set(chunk.subarray(i, i + n), this.headerLength);
      this.headerLength += n;
      this.offset += n;
      i += n;
      if (this.headerLength === HEADER) this.onHeader();
    }
  }

  private onHeader(): void {
    const h = this.header;
    this.eventStart = this.offset - HEADER;
    this.time = u32(h, 0);
    this.type = h[4] as number;
    this.serverId = u32(h, 5);
    const size = u32(h, 9);
    this.headerLength = 0;
    if (size < HEADER) throw new Error(`${this.file}: event at ${this.eventStart} claims ${size} bytes: not a binary log`);
    const rest = size - HEADER;
    let want = 0;
    if (this.type === FORMAT_DESCRIPTION_EVENT) want = rest;
    else if (this.type === QUERY_EVENT && size <= SMALL_QUERY) want = rest;
    else if (this.type === MARIADB_GTID_EVENT) want = Math.min(rest, 13);
    else if (this.type === MYSQL_GTID_EVENT) want = Math.min(rest, 25);
    this.skip = rest - want;
    if (want > 0) {
      this.body = new Uint8Array(want);
      this.bodyLength = 0;
    } else if (rest === 0) {
      this.endEvent();
    }
  }

  private onBody(b: Uint8Array): void {
    switch (this.type) {
      case FORMAT_DESCRIPTION_EVENT:
        // The checksum algorithm is the byte before the event's own 4-byte checksum (0 = none, 1 = CRC32).
        this.checksum = b.length >= 5 && b[b.length - 5] === 1 ? 4 : 0;
        break;
      case QUERY_EVENT: {
        this.queryRead = true;
        const dbLength = b[8] as number;
        const statusLength = (b[11] as number) | ((b[12] as number) << 8);
        const from = 13 + statusLength + dbLength + 1;
        const to = b.length - this.checksum;
        this.onQuery(from <= to ? Buffer.from(b.subarray(from, to)).toString('latin1').trim().toUpperCase() : '');
        break;
      }
      case MARIADB_GTID_EVENT: {
        if (b.length < 12) break;
        const domain = u32(b, 8);
        this.open.gtid(`${domain}-${this.serverId}`, `${domain}-${this.serverId}-${u64(b, 0)}`, this.time);
        const standalone = b.length >= 13 && ((b[12] as number) & 1) === 1;
        this.tx = standalone ? 'standalone' : 'open';
        break;
      }
      case MYSQL_GTID_EVENT: {
        if (b.length < 25) break;
        const source = uuidAt(b, 1);
        this.open.gtid(source, `${source}:${u64(b, 17)}`, this.time);
        this.tx = 'afterGtid';
        break;
      }
    }
  }

  private onQuery(text: string): void {
    if (this.tx === 'afterGtid' && text === 'BEGIN') {
      this.tx = 'open';
      return;
    }
    if (this.tx === 'open') {
      if (text === 'COMMIT' || text === 'ROLLBACK') this.tx = 'none';
      return;
    }
    // A statement on its own (DDL after a GTID, or anything outside a transaction).
    if (text !== 'BEGIN') this.tx = 'none';
    else this.tx = 'open';
  }

  private endEvent(): void {
    this.open.events += 1;
    switch (this.type) {
      case MYSQL_ANONYMOUS_GTID_EVENT:
      case MYSQL_GTID_TAGGED_EVENT:
        this.open.transactions += 1;
        if (this.open.first === null) this.open.first = this.time;
        this.open.last = this.time;
        this.tx = 'afterGtid';
        break;
      case XID_EVENT:
      case XA_PREPARE_EVENT:
      case TRANSACTION_PAYLOAD_EVENT:
        this.tx = 'none';
        break;
      case ROTATE_EVENT:
      case STOP_EVENT:
        if (this.tx === 'none') this.sawEnd = true;
        break;
    }
    // A statement too big to be BEGIN, COMMIT or ROLLBACK, right after a GTID: DDL, on its own.
    if (this.type === QUERY_EVENT && !this.queryRead && (this.tx === 'afterGtid' || this.tx === 'standalone')) this.tx = 'none';
    this.queryRead = false;
    if (this.tx === 'none') this.atBoundary();
  }

  private atBoundary(): void {
    if (!this.alignedAtResume) {
      if (this.offset === this.resumeAt) {
        this.alignedAtResume = true;
        this.safe = this.offset;
        this.open = new FactsBuilder();
      }
      return;
    }
    this.committed.absorb(this.open);
    this.open = new FactsBuilder();
    this.safe = this.offset;
  }

  /**
   * The server moved on to the next file without writing this one's last event (it crashed
   * and restarted): if the walk has reached the end with no transaction open, the file is
   * complete as it is. True when it now counts as closed.
   */
  endedWithoutRotate(): boolean {
    if (this.tx !== 'none' || this.safe !== this.offset || this.body !== null || this.headerLength !== 0 || this.skip !== 0) return false;
    this.sawEnd = true;
    return true;
  }

  /** Hands out [publishedEnd, safeEnd) with its facts; nothing when there is nothing new. */
  take(): { start: number; end: number; closed: boolean; facts: SegmentFacts } | null {
    if (this.safe <= this.taken) return null;
    const out = { start: this.taken, end: this.safe, closed: this.closed, facts: this.committed.facts() };
    this.taken = this.safe;
    this.committed = new FactsBuilder();
    return out;
  }
}
