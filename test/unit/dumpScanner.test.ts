import { DumpScanner } from '../../src/domain/dumpScanner';

/** Feeds text in chunks of every size from 1 byte up, so no boundary can hide a bug. */
function scan(text: string, chunkSize: number) {
  const bytes = new TextEncoder().encode(text);
  const scanner = new DumpScanner();
  for (let i = 0; i < bytes.length; i += chunkSize) scanner.push(bytes.subarray(i, i + chunkSize));
  return scanner.finish();
}

const MARIADB_DUMP = `/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;
-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000042', MASTER_LOG_POS=1498;

CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`shop\` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;
USE \`shop\`;

--
-- Table structure for table \`empty_one\`
--
CREATE TABLE \`empty_one\` (\`id\` int NOT NULL) ENGINE=InnoDB;

--
-- Table structure for table \`t\`
--
CREATE TABLE \`t\` (\`id\` int NOT NULL, \`v\` text) ENGINE=InnoDB;
INSERT INTO \`t\` VALUES
(1,'a'),
(2,'b;(x)\\n'),
(3,'it\\'s (not) a row); INSERT INTO \`t\` VALUES (9,'x')'),
(4,NULL),
(5,0x28293B27);
INSERT INTO \`t\` VALUES (6,'\\\\'),(7,'((');

--
-- Table structure for table \`we\`\`ird\`
--
INSERT INTO \`we\`\`ird\` VALUES (1);

--
-- Final view structure for view \`v\`
--
/*!50001 VIEW \`v\` AS select 1 */;

-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows
-- SET GLOBAL gtid_slave_pos='0-7-6,1-7-3';
-- Dump completed on 2026-11-22 14:34:16
`;

describe('DumpScanner', () => {
  test.each([1, 2, 3, 7, 64, 4096])('MariaDB dump, chunks of %i bytes', (size) => {
    const facts = scan(MARIADB_DUMP, size);
    expect(facts).toEqual({
      binlogFile: 'binlog.000042',
      binlogPosition: 1498,
      gtidSet: '0-7-6,1-7-3',
      databases: ['shop'],
      tables: [
        { database: 'shop', table: 'empty_one', rows: 0 },
        { database: 'shop', table: 't', rows: 7 },
        { database: 'shop', table: 'we`ird', rows: 1 },
      ],
      views: ['shop.v'],
      mariadbSandboxHeader: true,
      completed: true,
    });
  });

  test('MySQL 8.4 dialect: CHANGE REPLICATION SOURCE and a commented GTID_PURGED spanning lines', () => {
    const dump = [
      '-- MySQL dump 10.13  Distrib 8.4.3',
      "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=157;",
      "-- SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,",
      "-- 4f22fb58-71ca-11e1-9e33-c80aa9429562:1-17';",
      'USE `app`;',
      'INSERT INTO `x` VALUES (1),(2);',
      '-- Dump completed on 2026-11-22',
      '',
    ].join('\n');
    const facts = scan(dump, 5);
    expect(facts.binlogFile).toBe('binlog.000003');
    expect(facts.binlogPosition).toBe(157);
    expect(facts.gtidSet).toBe('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4f22fb58-71ca-11e1-9e33-c80aa9429562:1-17');
    expect(facts.tables).toEqual([{ database: 'app', table: 'x', rows: 2 }]);
    expect(facts.mariadbSandboxHeader).toBe(false);
  });

  test('MySQL 8.0 dialect: uncommented master data and a one-line GTID_PURGED', () => {
    const dump = "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000007', MASTER_LOG_POS=4;\nSET @@GLOBAL.GTID_PURGED='u:1-9';\n";
    const facts = scan(dump, 3);
    expect([facts.binlogFile, facts.binlogPosition, facts.gtidSet]).toEqual(['mysql-bin.000007', 4, 'u:1-9']);
    expect(facts.completed).toBe(false); // no trailer: a truncated dump is recognisable
  });

  test('MySQL 9.7 dialect: the commented GTID_PURGED with its + prefix gives the plain set', () => {
    const dump =
      "/* SET @@GLOBAL.GTID_PURGED='+52dbeed0-ede8-11f1-a611-02fc00000001:1-6';*/\n" +
      "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=198;\n-- Dump completed on 2026-12-02  0:46:31\n";
    const facts = scan(dump, 7);
    expect([facts.binlogFile, facts.binlogPosition, facts.gtidSet, facts.completed]).toEqual(['binlog.000003', 198, '52dbeed0-ede8-11f1-a611-02fc00000001:1-6', true]);
  });

  test('a dump cut off in the middle of a row is not "completed"', () => {
    const cut = MARIADB_DUMP.slice(0, MARIADB_DUMP.indexOf('(3,'));
    expect(scan(cut, 100).completed).toBe(false);
  });
  test('one-line VALUES: runs of backslashes before quotes, cut at every chunk boundary', () => {
    // Strings ending in 0..5 backslashes (escaped in the dump as pairs), escaped quotes,
    // and bytes that would end a statement outside a string.
    const values: string[] = [];
    for (let n = 0; n < 6; n++) values.push(`(${n},'${'\\\\'.repeat(n)}',"x")`, `(${n + 10},'a\\'b);(${'\\\\'.repeat(n)}\\'')`);
    const dump = `USE \`d\`;\n-- Table structure for table \`t\`\nINSERT INTO \`t\` VALUES ${values.join(',')};\nINSERT INTO \`t\` VALUES (99,'\\\\');\n-- Dump completed\n`;
    for (let size = 1; size <= 40; size++) {
      const facts = scan(dump, size);
      expect(facts.tables).toEqual([{ database: 'd', table: 't', rows: 13 }]);
      expect(facts.completed).toBe(true);
    }
  });
});
