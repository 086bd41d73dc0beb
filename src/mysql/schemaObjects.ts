/**
 * Views, triggers, routines and events of a restored database. The restore's own account
 * cannot create them all (a server with binary logging lets only SUPER create triggers and
 * stored routines, and only a privileged account may name another DEFINER), so the
 * restore administrator creates them from the dump's definitions, confined to the target:
 *
 *   1. after the data is loaded, each object is created with the restore's own account as
 *      its DEFINER (events: their original definer, DISABLED): whatever fires while the
 *      binary logs are replayed runs with an account that can write only the target;
 *   2. after the replay, every object still defined by that account gets its original
 *      DEFINER back (the one the dump or the replayed statement named; else the
 *      administrator), so the copy behaves like the original once the account is gone.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ObjectSession, RoutedObject } from '../domain/dumpRewrite';
import type { DefinedObjectType } from '../domain/restore/confine';
import { withDefiner } from '../domain/restore/confine';
import { quoteIdentifier } from '../domain/identifiers';
import { quoteName } from '../domain/sql/lexer';

/** `user`@`host` as a DEFINER clause names it. */
export function definerOf(account: { user: string; host: string }): string {
  return `${quoteName(account.user)}@${quoteName(account.host)}`;
}

/** The connection's own account (CURRENT_USER()) as a definer. */
export async function currentDefiner(conn: Connection): Promise<string> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u');
  const text = String(rows[0]?.u ?? '');
  const at = text.lastIndexOf('@');
  return definerOf({ user: text.slice(0, at), host: text.slice(at + 1) });
}

async function applySession(conn: Connection, session: ObjectSession): Promise<void> {
  if (session.sqlMode !== undefined) await conn.query('SET SESSION sql_mode = ?', [session.sqlMode]);
  if (session.characterSetClient !== undefined) await conn.query('SET SESSION character_set_client = ?', [session.characterSetClient]);
  if (session.collationConnection !== undefined) await conn.query('SET SESSION collation_connection = ?', [session.collationConnection]);
  if (session.timeZone !== undefined) await conn.query('SET SESSION time_zone = ?', [session.timeZone]);
}

async function resetSession(conn: Connection): Promise<void> {
  await conn.query('SET SESSION sql_mode = DEFAULT, SESSION character_set_client = DEFAULT, SESSION collation_connection = DEFAULT, SESSION time_zone = DEFAULT');
}

/** Step 1: create the dump's objects in the target (in dump order), definers as described above. */
export async function createRoutedObjects(admin: Connection, target: string, objects: readonly RoutedObject[], restoreAccount: string): Promise<void> {
  await admin.query(`USE ${quoteIdentifier(target)}`);
  for (const o of objects) {
    await applySession(admin, o.session);
    const definer = o.type === 'EVENT' ? (o.definer ?? restoreAccount) : restoreAccount;
    try {
      await admin.query(withDefiner(o.sql, definer, { orReplace: o.type === 'VIEW' }));
    } catch (error) {
      const e = error as { message?: string };
      throw new Error(`creating ${o.type.toLowerCase()} ${target}.${o.name} from the dump failed: ${e.message ?? String(error)}`, { cause: error });
    } finally {
      await resetSession(admin);
    }
  }
}

function key(type: DefinedObjectType, name: string): string {
  return `${type}:${name}`;
}

export interface DefinerFix {
  type: DefinedObjectType;
  name: string;
  definer: string;
}

/**
 * Step 2: objects of `database` still defined by the restore's account get their original
 * definer back (`originals` by type and name; `fallback` for those nobody named).
 */
export async function restoreDefiners(
  admin: Connection,
  database: string,
  restoreAccount: { user: string; host: string },
  originals: ReadonlyMap<string, string>,
  fallback: string,
): Promise<DefinerFix[]> {
  const ours = `${restoreAccount.user}@${restoreAccount.host}`;
  const db = quoteIdentifier(database);
  const fixed: DefinerFix[] = [];
  const original = (type: DefinedObjectType, name: string) => originals.get(key(type, name)) ?? fallback;
  await admin.query(`USE ${db}`);

  const [views] = await admin.query<RowDataPacket[]>('SELECT TABLE_NAME AS name FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? AND DEFINER = ?', [database, ours]);
  for (const v of views) {
    const name = String(v.name);
    const [[show]] = (await admin.query(`SHOW CREATE VIEW ${db}.${quoteName(name)}`)) as unknown as [[Record<string, string>]];
    await applySession(admin, { characterSetClient: show.character_set_client, collationConnection: show.collation_connection });
    await admin.query(withDefiner(String(show['Create View']), original('VIEW', name), { orReplace: true }));
    await resetSession(admin);
    fixed.push({ type: 'VIEW', name, definer: original('VIEW', name) });
  }

  const [routines] = await admin.query<RowDataPacket[]>('SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND DEFINER = ?', [database, ours]);
  for (const r of routines) {
    const name = String(r.name);
    const type = String(r.type).toUpperCase() === 'FUNCTION' ? 'FUNCTION' : 'PROCEDURE';
    const [[show]] = (await admin.query(`SHOW CREATE ${type} ${db}.${quoteName(name)}`)) as unknown as [[Record<string, string>]];
    const create = String(show[type === 'FUNCTION' ? 'Create Function' : 'Create Procedure']);
    await admin.query(`DROP ${type} ${db}.${quoteName(name)}`);
    await applySession(admin, { sqlMode: show.sql_mode, characterSetClient: show.character_set_client, collationConnection: show.collation_connection });
    await admin.query(withDefiner(create, original(type, name)));
    await resetSession(admin);
    fixed.push({ type, name, definer: original(type, name) });
  }

  // Triggers: one table's triggers are re-created together, in their order.
  const [triggers] = await admin.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tbl, DEFINER AS definer FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER',
    [database],
  );
  const tables = new Set(triggers.filter((t) => String(t.definer) === ours).map((t) => String(t.tbl)));
  for (const table of tables) {
    const ofTable = triggers.filter((t) => String(t.tbl) === table);
    const definitions = [];
    for (const t of ofTable) {
      const [[show]] = (await admin.query(`SHOW CREATE TRIGGER ${db}.${quoteName(String(t.name))}`)) as unknown as [[Record<string, string>]];
      definitions.push({ name: String(t.name), mine: String(t.definer) === ours, show });
    }
    for (const d of definitions) await admin.query(`DROP TRIGGER ${db}.${quoteName(d.name)}`);
    for (const d of definitions) {
      await applySession(admin, { sqlMode: d.show.sql_mode, characterSetClient: d.show.character_set_client, collationConnection: d.show.collation_connection });
      const statement = String(d.show['SQL Original Statement']);
      await admin.query(d.mine ? withDefiner(statement, original('TRIGGER', d.name)) : statement);
      await resetSession(admin);
      if (d.mine) fixed.push({ type: 'TRIGGER', name: d.name, definer: original('TRIGGER', d.name) });
    }
  }

  const [events] = await admin.query<RowDataPacket[]>('SELECT EVENT_NAME AS name FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND DEFINER = ?', [database, ours]);
  for (const e of events) {
    const name = String(e.name);
    const definer = original('EVENT', name);
    // Re-lexed through withDefiner's check: the definer is a user@host and nothing else.
    withDefiner('CREATE EVENT x ON SCHEDULE EVERY 1 DAY DO SELECT 1', definer);
    await admin.query(`ALTER DEFINER=${definer} EVENT ${db}.${quoteName(name)} DISABLE`);
    fixed.push({ type: 'EVENT', name, definer });
  }
  return fixed;
}

/** Every event of a restored database disabled (a copy must not run jobs); returns how many were enabled. */
export async function disableEvents(admin: Connection, database: string): Promise<number> {
  const [events] = await admin.query<RowDataPacket[]>("SELECT EVENT_NAME AS name FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND STATUS <> 'DISABLED'", [database]);
  for (const e of events) await admin.query(`ALTER EVENT ${quoteIdentifier(database)}.${quoteName(String(e.name))} DISABLE`);
  return events.length;
}

export function originalsMap(records: ReadonlyArray<{ type: DefinedObjectType; name: string; definer: string | null }>): Map<string, string> {
  const map = new Map<string, string>();
  for (const r of records) if (r.definer && r.definer !== 'CURRENT_USER') map.set(key(r.type, r.name), r.definer);
  return map;
}
