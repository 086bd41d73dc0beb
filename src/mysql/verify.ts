/** What a restored database holds: row counts and checksums per table, compared against the backup's. */
import type { RowDataPacket } from 'mysql2/promise';
import type { ClusterConfig } from '../config/schema';
import { quoteIdentifier } from '../domain/identifiers';
import { withConnection } from './connection';
import { restoreAccount } from './restoreAccount';

export interface TableVerification {
  table: string;
  rows: number;
  checksum: string;
}

/** Row counts and CHECKSUM TABLE of every base table in a database. */
export async function verifyDatabase(cluster: ClusterConfig, database: string): Promise<TableVerification[]> {
  return withConnection(restoreAccount(cluster), async (conn) => {
    const [tables] = await conn.query<RowDataPacket[]>(
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
      [database],
    );
    const out: TableVerification[] = [];
    for (const { t } of tables) {
      const name = `${quoteIdentifier(database)}.${quoteIdentifier(String(t))}`;
      const [[count]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${name}`)) as unknown as [[{ n: string }]];
      const [[sum]] = (await conn.query(`CHECKSUM TABLE ${name} EXTENDED`)) as unknown as [[{ Checksum: string | null }]];
      out.push({ table: String(t), rows: Number(count.n), checksum: String(sum.Checksum) });
    }
    return out;
  });
}
