/**
 * Putting restored tables in place of live ones (a table restore with --swap), crash-safe:
 *
 *   1. the live tables' triggers are captured (definition, sql_mode, character set) and kept
 *      in the workflow's state before anything is dropped;
 *   2. just before the swap, each restored table is verified again (rows and CHECKSUM TABLE)
 *      against what the restore verified: nobody changed it while the approval waited;
 *   3. one atomic RENAME: t -> t_before_<run>, t_restored_<run> -> t;
 *   4. the triggers, which followed the old table, are moved onto the swapped-in table: each
 *      is dropped where it is and created from its captured definition where it belongs.
 *      Every step looks at what is there first, so a retry after a crash at any point
 *      finishes the job and no trigger is lost.
 *
 * Names carry the run (`_restored_<8 hex>`), and dbops drops only the restored tables of
 * the run asking, by names it builds itself.
 */
import { Failure } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/common';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { createdObject, triggerTable } from '../domain/restore/confine';
import { quoteIdentifier } from '../domain/identifiers';
import { quoteName } from '../domain/sql/lexer';

export interface CapturedTrigger {
  table: string;
  name: string;
  statement: string;
  sqlMode: string;
  characterSetClient: string;
  collationConnection: string;
}

export interface TableCheck {
  table: string;
  rows: number;
  checksum: string;
}

const RUN_TAG = /^[0-9a-f]{8}$/;

export function restoredName(table: string, runTag: string): string {
  if (!RUN_TAG.test(runTag)) throw new Error(`not a run tag: ${runTag}`);
  return `${table}_restored_${runTag}`;
}

export function beforeName(table: string, runTag: string): string {
  if (!RUN_TAG.test(runTag)) throw new Error(`not a run tag: ${runTag}`);
  return `${table}_before_${runTag}`;
}

/** The triggers of these tables, in the order the server fires them. */
export async function captureTriggers(conn: Connection, database: string, tables: readonly string[]): Promise<CapturedTrigger[]> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tbl FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE IN (?) ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`,
    [database, tables],
  );
  const out: CapturedTrigger[] = [];
  for (const r of rows) {
    const [[show]] = (await conn.query(`SHOW CREATE TRIGGER ${quoteIdentifier(database)}.${quoteName(String(r.name))}`)) as unknown as [[Record<string, string>]];
    out.push({
      table: String(r.tbl),
      name: String(r.name),
      statement: String(show['SQL Original Statement']),
      sqlMode: String(show.sql_mode ?? ''),
      characterSetClient: String(show.character_set_client ?? 'utf8mb4'),
      collationConnection: String(show.collation_connection ?? 'utf8mb4_general_ci'),
    });
  }
  return out;
}

/** What a captured trigger may be: a CREATE TRIGGER of that name on that table, nothing else. */
function checkCaptured(t: CapturedTrigger): void {
  const object = createdObject(t.statement);
  if (object?.type !== 'TRIGGER' || object.name !== t.name || triggerTable(t.statement) !== t.table) {
    throw ApplicationFailure.nonRetryable(`the captured definition of trigger ${t.name} is not a CREATE TRIGGER on ${t.table}; nothing was changed`, Failure.InvalidInput);
  }
}

async function tablesIn(conn: Connection, database: string): Promise<Set<string>> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [database]);
  return new Set(rows.map((r) => String(r.t)));
}

async function measure(conn: Connection, database: string, table: string): Promise<TableCheck> {
  const name = `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
  const [[count]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${name}`)) as unknown as [[{ n: string }]];
  const [[sum]] = (await conn.query(`CHECKSUM TABLE ${name} EXTENDED`)) as unknown as [[{ Checksum: string | null }]];
  return { table, rows: Number(count.n), checksum: String(sum.Checksum) };
}

export interface SwapRequest {
  database: string;
  runTag: string;
  tables: readonly string[];
  triggers: readonly CapturedTrigger[];
  /** What the restore verified, by the live table's name. */
  expect: readonly TableCheck[];
}

export async function swapTables(conn: Connection, req: SwapRequest): Promise<{ swapped: string[]; triggersMoved: number }> {
  for (const t of req.triggers) {
    checkCaptured(t);
    if (!req.tables.includes(t.table)) throw ApplicationFailure.nonRetryable(`trigger ${t.name} belongs to ${t.table}, which is not swapped`, Failure.InvalidInput);
  }
  const db = quoteIdentifier(req.database);
  const present = await tablesIn(conn, req.database);
  const pending = req.tables.filter((t) => !(present.has(beforeName(t, req.runTag)) && !present.has(restoredName(t, req.runTag))));
  for (const t of pending) {
    if (!present.has(t) || !present.has(restoredName(t, req.runTag))) {
      throw ApplicationFailure.nonRetryable(`cannot swap ${req.database}.${t}: ${present.has(t) ? `${restoredName(t, req.runTag)} is missing` : 'the live table is missing'}; nothing was swapped`, Failure.InvalidInput);
    }
    const expected = req.expect.find((e) => e.table === t);
    const now = await measure(conn, req.database, restoredName(t, req.runTag));
    if (!expected || expected.rows !== now.rows || expected.checksum !== now.checksum) {
      throw ApplicationFailure.nonRetryable(
        `${req.database}.${restoredName(t, req.runTag)} changed since the restore verified it (${expected ? `${expected.rows} rows, checksum ${expected.checksum}` : 'not verified'}; now ${now.rows} rows, checksum ${now.checksum}); nothing was swapped`,
        Failure.InvalidInput,
      );
    }
  }
  if (pending.length > 0) {
    const parts = pending.flatMap((t) => [`${db}.${quoteIdentifier(t)} TO ${db}.${quoteIdentifier(beforeName(t, req.runTag))}`, `${db}.${quoteIdentifier(restoredName(t, req.runTag))} TO ${db}.${quoteIdentifier(t)}`]);
    await conn.query(`RENAME TABLE ${parts.join(', ')}`);
  }
  // The triggers followed the old tables: move each onto the swapped-in table, in order.
  let moved = 0;
  await conn.query(`USE ${db}`);
  for (const t of req.triggers) {
    const [where] = await conn.query<RowDataPacket[]>('SELECT EVENT_OBJECT_TABLE AS tbl FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?', [req.database, t.name]);
    const on = where[0] ? String(where[0].tbl) : null;
    if (on === t.table) continue; // already moved (a retry)
    if (on !== null) await conn.query(`DROP TRIGGER ${db}.${quoteName(t.name)}`);
    await conn.query('SET SESSION sql_mode = ?, SESSION character_set_client = ?, SESSION collation_connection = ?', [t.sqlMode, t.characterSetClient, t.collationConnection]);
    try {
      await conn.query(t.statement);
    } finally {
      await conn.query('SET SESSION sql_mode = DEFAULT, SESSION character_set_client = DEFAULT, SESSION collation_connection = DEFAULT');
    }
    moved += 1;
  }
  return { swapped: pending, triggersMoved: moved };
}

/** Drops the restored tables of one run, by the names it gave them; never anything else. */
export async function dropRestoredTables(conn: Connection, database: string, runTag: string, tables: readonly string[]): Promise<string[]> {
  const names = tables.map((t) => restoredName(t, runTag));
  if (names.length > 0) await conn.query(`DROP TABLE IF EXISTS ${names.map((n) => `${quoteIdentifier(database)}.${quoteIdentifier(n)}`).join(', ')}`);
  return names;
}

/** The restored tables of a run moved from the scratch database next to the live ones (their triggers dropped first). */
export async function moveRestoredTables(conn: Connection, scratch: string, database: string, runTag: string, tables: readonly string[]): Promise<void> {
  if (!/^dbops_r_[0-9a-f]{12}$/.test(scratch)) throw ApplicationFailure.nonRetryable(`not a restore scratch database: ${scratch}`, Failure.InvalidInput);
  const present = await tablesIn(conn, database);
  const pending = tables.filter((t) => !present.has(restoredName(t, runTag)));
  if (pending.length === 0) return;
  for (const t of pending) {
    // MariaDB cannot move a table with triggers across databases, and a restored copy must not fire them anyway.
    const [triggers] = await conn.query<RowDataPacket[]>('SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [scratch, t]);
    for (const r of triggers) await conn.query(`DROP TRIGGER ${quoteIdentifier(scratch)}.${quoteName(String(r.name))}`);
  }
  await conn.query(`RENAME TABLE ${pending.map((t) => `${quoteIdentifier(scratch)}.${quoteIdentifier(t)} TO ${quoteIdentifier(database)}.${quoteIdentifier(restoredName(t, runTag))}`).join(', ')}`);
}
