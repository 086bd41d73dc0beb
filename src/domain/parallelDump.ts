/**
 * The parallel logical backup's pure parts: how a table is split into key-range chunks,
 * how one row becomes SQL on the server, and what the manifest records of the chunks.
 * Pure: safe to import from workflows.
 *
 * A chunk is one artifact of `INSERT INTO <table> (<columns>) VALUES (...),(...);`
 * statements and nothing else, rendered by the server itself (QUOTE, HEX) so that every
 * value round-trips byte for byte, whatever its type or character set. The restore wraps
 * each chunk in one transaction, so a chunk is either wholly loaded or not at all.
 */
import { z } from 'zod';

/** Integers travel as decimal strings (BIGINT UNSIGNED does not fit a JS number). */
export const IntegerStringSchema = z.string().regex(/^-?\d{1,20}$/, 'an integer');

export const ChunkRangeSchema = z.strictObject({
  /** The single-column integer key the table is split on. */
  column: z.string().min(1).max(64),
  /** Lower bound, inclusive (null: from the first row). */
  from: IntegerStringSchema.nullable(),
  /** Upper bound, exclusive (null: to the last row). */
  to: IntegerStringSchema.nullable(),
});
export type ChunkRange = z.infer<typeof ChunkRangeSchema>;

export const ChunkSchema = z.strictObject({
  database: z.string().min(1).max(64),
  table: z.string().min(1).max(64),
  artifact: z.string().regex(/^chunk-\d{4}-\d{5}-\d{5}\.sql(\.zst|\.gz)?$/, 'a chunk artifact name'),
  rows: z.number().int().nonnegative(),
  /** null: the whole table is this one chunk. */
  range: ChunkRangeSchema.nullable(),
});
export type Chunk = z.infer<typeof ChunkSchema>;

/** What a chunked (parallel) full backup holds besides its chunks. */
export const ParallelLayoutSchema = z.strictObject({
  /** Tables, views, routines and events, no rows, no triggers (mysqldump --no-data). */
  schema: z.string().regex(/^schema\.sql(\.zst|\.gz)?$/),
  /** Triggers only: created after the rows are in, or they would fire on the load. */
  triggers: z.string().regex(/^triggers\.sql(\.zst|\.gz)?$/),
  /** Sessions that read the snapshot. */
  threads: z.number().int().min(1).max(64),
  chunks: z.array(ChunkSchema),
});
export type ParallelLayout = z.infer<typeof ParallelLayoutSchema>;

export function chunkArtifactName(database: number, table: number, chunk: number, extension: string): string {
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  return `chunk-${pad(database, 4)}-${pad(table, 5)}-${pad(chunk, 5)}.sql${extension}`;
}

/** A column as information_schema describes it. */
export interface ColumnInfo {
  name: string;
  /** DATA_TYPE, lower case: int, varchar, json, geometry, … */
  dataType: string;
  /** CHARACTER_SET_NAME (null for non-character types). */
  charset: string | null;
  /** Generated columns are computed again by the target, never written. */
  generated: boolean;
}

const NUMERIC = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'year']);
const FLOATING = new Set(['float', 'double', 'real', 'double precision']);
const BINARY = new Set([
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'geomcollection',
  'vector',
]);
const INTEGER_KEY = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint']);

export function isIntegerType(dataType: string): boolean {
  return INTEGER_KEY.has(dataType.toLowerCase());
}

/** A name read from the server, quoted for SQL text (backticks doubled). */
export function quoteName(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}


/**
 * The SQL expression that renders one column of a row as a SQL literal, as bytes:
 * numbers as they are, bits as b'…', binary data as X'…', floats as doubles, JSON with a
 * utf8mb4 introducer, everything else (character data in the column's own bytes, dates,
 * times, ENUM, UUID, …) quoted. NULL stays NULL.
 */
export function renderColumn(column: ColumnInfo): string {
  const c = quoteName(column.name);
  const type = column.dataType.toLowerCase();
  let literal: string;
  if (NUMERIC.has(type)) literal = `CAST(${c} AS BINARY)`;
  // As a double (a FLOAT's 6 printed digits do not read back to the same float; its exact
  // double does), written as a float literal ("…e0": "-0" alone would be read as the integer 0).
  else if (FLOATING.has(type)) literal = `CONCAT(CAST(${c} * 1e0 AS BINARY), IF(LOCATE('e', CAST(${c} * 1e0 AS BINARY)) > 0, '', 'e0'))`;
  else if (type === 'bit') literal = `CONCAT('b''', BIN(${c}), '''')`;
  else if (BINARY.has(type)) literal = `CONCAT('X''', HEX(${c}), '''')`;
  else if (type === 'json') literal = `CONCAT('_utf8mb4', CAST(QUOTE(${c}) AS BINARY))`; // MySQL's JSON refuses binary strings
  // Character data goes as the column's own bytes, quoted byte by byte: the load reads it
  // with SET NAMES binary, and a binary string is stored into a character column byte for
  // byte. (QUOTE of the text itself would skip a 0x5C that ends a Shift-JIS or GBK
  // character, which a byte-wise reader takes for a backslash.)
  else if (column.charset) literal = `QUOTE(CAST(${c} AS BINARY))`;
  else literal = `CAST(QUOTE(${c}) AS BINARY)`;
  return `IF(${c} IS NULL, 'NULL', ${literal})`;
}

/** The columns a chunk writes (generated ones are left to the target). */
export function writtenColumns(columns: readonly ColumnInfo[]): ColumnInfo[] {
  return columns.filter((c) => !c.generated);
}

/** SELECT that returns one row literal, "(v1,v2,…)", per row of the chunk. */
export function chunkSelect(database: string, table: string, columns: readonly ColumnInfo[], range: ChunkRange | null): string {
  const cols = writtenColumns(columns);
  const row = `CONCAT('(', CONCAT_WS(',', ${cols.map(renderColumn).join(', ')}), ')')`;
  return `SELECT ${row} FROM ${quoteName(database)}.${quoteName(table)}${rangeWhere(range)}`;
}

/** WHERE clause of a key range (bounds are validated integers). */
export function rangeWhere(range: ChunkRange | null): string {
  if (!range) return '';
  const parts: string[] = [];
  if (range.from !== null) parts.push(`${quoteName(range.column)} >= ${IntegerStringSchema.parse(range.from)}`);
  if (range.to !== null) parts.push(`${quoteName(range.column)} < ${IntegerStringSchema.parse(range.to)}`);
  return parts.length > 0 ? ` WHERE ${parts.join(' AND ')}` : '';
}

/** The statement head each batch of rows starts with. */
export function insertHead(table: string, columns: readonly ColumnInfo[]): string {
  return `INSERT INTO ${quoteName(table)} (${writtenColumns(columns).map((c) => quoteName(c.name)).join(',')}) VALUES `;
}

export interface TableToSplit {
  /** Estimated rows (information_schema.TABLES.TABLE_ROWS). */
  rows: number;
  /** The single-column integer key, with its smallest and largest value in the snapshot. */
  key: { column: string; min: bigint; max: bigint } | null;
}

/**
 * Key ranges of about `chunkRows` rows each, assuming keys spread evenly between min and
 * max (gaps make some chunks smaller, never wrong). The first range is open below and the
 * last open above, so every row is in exactly one range whatever the estimate said.
 */
export function planChunks(table: TableToSplit, chunkRows: number): Array<ChunkRange | null> {
  if (!table.key || table.rows <= chunkRows) return [null];
  const { column, min, max } = table.key;
  const span = max - min + 1n;
  const wanted = BigInt(Math.min(10_000, Math.ceil(table.rows / chunkRows)));
  const step = span / wanted + (span % wanted === 0n ? 0n : 1n);
  if (step <= 0n || wanted <= 1n) return [null];
  const ranges: ChunkRange[] = [];
  for (let lo = min; lo <= max; lo += step) {
    const hi = lo + step;
    ranges.push({ column, from: ranges.length === 0 ? null : lo.toString(), to: hi > max ? null : hi.toString() });
  }
  return ranges;
}

/** Rows of each table across its chunks (the manifest's table list). */
export function tableRows(chunks: readonly Chunk[]): Array<{ database: string; table: string; rows: number }> {
  const out = new Map<string, { database: string; table: string; rows: number }>();
  for (const c of chunks) {
    const key = `${c.database}\u0000${c.table}`;
    const seen = out.get(key);
    if (seen) seen.rows += c.rows;
    else out.set(key, { database: c.database, table: c.table, rows: c.rows });
  }
  return [...out.values()];
}
