/** Finding the bad statement in decoded binlogs, in the shapes MariaDB and MySQL write them. */
import { compilePattern } from '../../src/domain/restoreTarget';
import { StatementFinder, type StatementHit } from '../../src/domain/restore/statementFinder';

function find(text: string, pattern: string, after: string | null = null): StatementHit | null {
  const re = compilePattern(pattern);
  const finder = new StatementFinder({ firstFile: 'binlog.000001', startPosition: 4, matches: (t) => re.matcher(t).find(), after });
  for (const line of text.split('\n')) {
    const hit = finder.line(line);
    if (hit) return hit;
  }
  return null;
}

const MARIADB = `# at 1234
#261122 14:03:06 server id 11  end_log_pos 1276 CRC32 0x1a2b3c4d 	GTID 0-11-42 trans
/*M!100001 SET @@session.gtid_seq_no=42*//*!*/;
START TRANSACTION
/*!*/;
# at 1276
# at 1350
#261122 14:03:06 server id 11  end_log_pos 1350 CRC32 0x1a2b3c4d 	Annotate_rows:
#Q> DELETE FROM incident.orders WHERE total > 0
#261122 14:03:06 server id 11  end_log_pos 1405 CRC32 0x1a2b3c4d 	Table_map: \`incident\`.\`orders\` mapped to number 30
# at 1405
#261122 14:03:06 server id 11  end_log_pos 1500 CRC32 0x1a2b3c4d 	Delete_rows: table id 30 flags: STMT_END_F
### DELETE FROM \`incident\`.\`orders\`
### WHERE
###   @1=1`;

// MySQL 9.7 mysqlbinlog -vv --base64-output=DECODE-ROWS, one transaction with a Rows_query event and one without.
const MYSQL = `# at 1040
#261202  0:35:54 server id 5  end_log_pos 1119 CRC32 0x7c2ca3a3 	GTID	last_committed=4	sequence_number=5	rbr_only=yes	original_committed_timestamp=1796171754603055	immediate_commit_timestamp=1796171754603055	transaction_length=343
/*!50718 SET TRANSACTION ISOLATION LEVEL READ COMMITTED*//*!*/;
# original_commit_timestamp=1796171754603055 (2026-12-02 00:35:54.603055 UTC)
SET @@SESSION.GTID_NEXT= '52dbeed0-ede8-11f1-a611-02fc00000001:5'/*!*/;
# at 1119
#261202  0:35:54 server id 5  end_log_pos 1190 CRC32 0x4d59f573 	Query	thread_id=9	exec_time=0	error_code=0
SET TIMESTAMP=1796171754/*!*/;
BEGIN
/*!*/;
# at 1190
#261202  0:35:54 server id 5  end_log_pos 1253 CRC32 0x5d6c2360 	Rows_query
# DELETE FROM shop.orders WHERE total > 6
# at 1253
#261202  0:35:54 server id 5  end_log_pos 1308 CRC32 0x1f9022c8 	Table_map: \`shop\`.\`orders\` mapped to number 106
# has_generated_invisible_primary_key=0
# at 1308
#261202  0:35:54 server id 5  end_log_pos 1352 CRC32 0x7e9afec1 	Delete_rows: table id 106 flags: STMT_END_F USE_SQL_FOREIGN_KEY_F
### DELETE FROM \`shop\`.\`orders\`
### WHERE
###   @1=2 /* INT meta=0 nullable=0 is_null=0 */
# at 1352
#261202  0:35:54 server id 5  end_log_pos 1383 CRC32 0x13ef492e 	Xid = 8
COMMIT/*!*/;
# at 1383
#261202  0:35:55 server id 5  end_log_pos 1462 CRC32 0x4b919394 	GTID	last_committed=4	sequence_number=6	rbr_only=yes	original_committed_timestamp=1796171754604049	immediate_commit_timestamp=1796171754604049	transaction_length=280
SET @@SESSION.GTID_NEXT= '52dbeed0-ede8-11f1-a611-02fc00000001:6'/*!*/;
# at 1462
#261202  0:35:55 server id 5  end_log_pos 1533 CRC32 0x4f7204b8 	Query	thread_id=9	exec_time=0	error_code=0
BEGIN
/*!*/;
# at 1533
#261202  0:35:55 server id 5  end_log_pos 1588 CRC32 0x428407a5 	Table_map: \`shop\`.\`customers\` mapped to number 107
# at 1588
#261202  0:35:55 server id 5  end_log_pos 1632 CRC32 0x4e1ff678 	Delete_rows: table id 107 flags: STMT_END_F
### DELETE FROM \`shop\`.\`customers\`
### WHERE
###   @1=1 /* INT meta=0 nullable=0 is_null=0 */`;

test('MariaDB: the annotated statement, at the start of its GTID transaction', () => {
  expect(find(MARIADB, 'DELETE FROM .*orders')).toEqual({ file: 'binlog.000001', position: 1234, time: '2026-11-22T14:03:06Z', gtid: '0-11-42', statement: 'DELETE FROM incident.orders WHERE total > 0', from: 'statement' });
});

test('MariaDB without annotations: the decoded row event still names the table', () => {
  const hit = find(MARIADB.replace(/^#Q> .*$/m, ''), 'DELETE FROM .*orders');
  expect(hit).toMatchObject({ position: 1234, gtid: '0-11-42', statement: 'DELETE FROM `incident`.`orders`', from: 'row-event' });
});

test('MySQL with binlog_rows_query_log_events: the Rows_query text; the GTID from GTID_NEXT', () => {
  expect(find(MYSQL, 'DELETE FROM .*orders WHERE')).toEqual({
    file: 'binlog.000001',
    position: 1040,
    time: '2026-12-02T00:35:54Z',
    gtid: '52dbeed0-ede8-11f1-a611-02fc00000001:5',
    statement: 'DELETE FROM shop.orders WHERE total > 6',
    from: 'statement',
  });
});

test('MySQL without statement text: the row event header, in the transaction that holds it', () => {
  expect(find(MYSQL, 'DELETE FROM .*customers')).toMatchObject({ position: 1383, gtid: '52dbeed0-ede8-11f1-a611-02fc00000001:6', statement: 'DELETE FROM `shop`.`customers`', from: 'row-event' });
});

test('--after skips earlier matches; comment lines never match', () => {
  expect(find(MYSQL, 'DELETE FROM', '2026-12-02T00:35:55Z')).toMatchObject({ position: 1383 });
  expect(find(MYSQL, 'original_commit_timestamp')).toBeNull();
  expect(find(MYSQL, 'has_generated_invisible')).toBeNull();
});
