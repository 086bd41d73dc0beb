/**
 * GTIDs of both products, as restore targets and as the facts a manifest records.
 *   MariaDB: domain-server-sequence, e.g. 0-1-2030: one transaction; "stop after it".
 *   MySQL:   a GTID set, uuid:interval[:interval][,uuid:…], e.g.
 *            3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42 (what gtid_executed reads like):
 *            "the state after exactly these transactions". One GTID uuid:42 stands for
 *            uuid:1-42, the state right after it on a server with one source.
 * Pure.
 */

export type GtidTarget =
  | { flavor: 'mariadb'; domain: number; server: number; sequence: number }
  | { flavor: 'mysql'; set: MysqlGtidSet };

/** uuid (lower case) → sorted, merged, inclusive intervals. */
export type MysqlGtidSet = Map<string, Array<[number, number]>>;

const MARIADB_GTID = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class GtidError extends Error {}

/** Parses "uuid:1-5:7,uuid2:3" (whitespace and newlines as SHOW BINARY LOG STATUS prints them are fine). */
export function parseMysqlGtidSet(text: string): MysqlGtidSet {
  const set: MysqlGtidSet = new Map();
  const body = text.replace(/\s+/g, '').replace(/^\+/, '');
  if (body === '') return set;
  for (const part of body.split(',')) {
    const [rawUuid, ...intervals] = part.split(':');
    const uuid = (rawUuid ?? '').toLowerCase();
    if (!UUID.test(uuid) || intervals.length === 0) throw new GtidError(`"${part}" is not uuid:interval (e.g. 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42)`);
    const list = set.get(uuid) ?? [];
    for (const interval of intervals) {
      const m = /^(\d{1,19})(?:-(\d{1,19}))?$/.exec(interval);
      const start = Number(m?.[1]);
      const end = Number(m?.[2] ?? m?.[1]);
      if (!m || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 1 || end < start) {
        throw new GtidError(`"${interval}" in "${part}" is not a transaction number or a range a-b with 1 <= a <= b`);
      }
      list.push([start, end]);
    }
    set.set(uuid, merge(list));
  }
  return set;
}

function merge(list: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...list].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

export function formatMysqlGtidSet(set: MysqlGtidSet): string {
  return [...set.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([uuid, intervals]) => `${uuid}:${intervals.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(':')}`)
    .join(',');
}

export function mysqlSetContains(set: MysqlGtidSet, uuid: string, n: number): boolean {
  return (set.get(uuid.toLowerCase()) ?? []).some(([s, e]) => n >= s && n <= e);
}

/** Every transaction of a is in b. */
export function mysqlSubset(a: MysqlGtidSet, b: MysqlGtidSet): boolean {
  for (const [uuid, intervals] of a) {
    const outer = b.get(uuid) ?? [];
    if (!intervals.every(([s, e]) => outer.some(([os, oe]) => s >= os && e <= oe))) return false;
  }
  return true;
}

/** The highest transaction number of a source in the set (0: none). */
export function mysqlMax(set: MysqlGtidSet, uuid: string): number {
  const intervals = set.get(uuid.toLowerCase()) ?? [];
  return intervals.length ? intervals[intervals.length - 1]![1] : 0;
}

/** A --to gtid:… value, normalised: MariaDB as given, MySQL as a set (uuid:N becomes uuid:1-N). */
export function parseGtidTarget(text: string): { target: GtidTarget; normalised: string } {
  const maria = MARIADB_GTID.exec(text);
  if (maria) {
    const target = { flavor: 'mariadb' as const, domain: Number(maria[1]), server: Number(maria[2]), sequence: Number(maria[3]) };
    return { target, normalised: `${target.domain}-${target.server}-${target.sequence}` };
  }
  const single = /^([0-9a-fA-F-]{36}):(\d{1,19})$/.exec(text);
  const set = parseMysqlGtidSet(single ? `${single[1]}:1-${single[2]}` : text);
  if (set.size === 0) throw new GtidError('an empty GTID set');
  return { target: { flavor: 'mysql', set }, normalised: formatMysqlGtidSet(set) };
}

/** The last GTID of a MySQL set for one source, as uuid:n (what a replay reached). */
export function mysqlGtid(uuid: string, n: number): string {
  return `${uuid.toLowerCase()}:${n}`;
}
