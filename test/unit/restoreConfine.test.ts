/**
 * What a restore into another name sends to the server: qualified names of the live
 * database rewritten, other databases refused, definers and events neutralised, row
 * events for other databases stopped, the source's GTIDs left out. Pure.
 */
import { render, tokenize } from '../../src/domain/sql/lexer';
import { confineStatement, type ConfineContext } from '../../src/domain/restore/confine';
import { ReplayRefused, ReplayStream } from '../../src/domain/restore/replayStream';

const ctx: ConfineContext = { source: 'live', target: 'live_iso', schemas: new Set(['live', 'other', 'mysql', 'live_iso']) };

describe('lexer', () => {
  test.each([
    "SELECT 'a;b', \"c\\\"d\", `e``f` FROM t -- tail\n",
    '/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `x` AFTER UPDATE ON `t` FOR EACH ROW SET @a := 1 */',
    "/*M!100001 SET @@session.gtid_seq_no=7*/",
    "INSERT INTO t VALUES (1.5e3, 0x1F, .5, 'it''s', _utf8mb4'x', @@session.sql_mode, @'q')",
    '# comment\nSELECT 1 /* c */ # more',
  ])('round-trips %s', (sql) => {
    expect(render(tokenize(sql))).toBe(sql);
  });

  test('an unclosed quote is an error, not a guess', () => {
    expect(() => tokenize("SELECT 'abc")).toThrow(/unclosed ' quote/);
  });
});

describe('confineStatement', () => {
  test.each([
    ['create table live.probe (id int primary key)', 'create table `live_iso`.probe (id int primary key)'],
    ['DROP TABLE `live`.`x`', 'DROP TABLE `live_iso`.`x`'],
    ['TRUNCATE live.x', 'TRUNCATE `live_iso`.x'],
    ['ALTER TABLE live.x ADD c INT', 'ALTER TABLE `live_iso`.x ADD c INT'],
    ['RENAME TABLE live.a TO live.b', 'RENAME TABLE `live_iso`.a TO `live_iso`.b'],
    ['INSERT INTO live.t SELECT id + 10, v FROM live.t', 'INSERT INTO `live_iso`.t SELECT id + 10, v FROM `live_iso`.t'],
  ])('rewrites the live database in %s', (sql, expected) => {
    const outcome = confineStatement(sql, ctx);
    expect(outcome).toMatchObject({ action: 'rewrite', text: expected });
  });

  test('leaves unqualified statements, strings, comments and alias.column alone', () => {
    for (const sql of ["insert into t values (3,'live.x')", 'UPDATE orders o SET o.status = 1 /* live.x */', 'DELETE FROM t WHERE id = 1']) {
      expect(confineStatement(sql, ctx)).toEqual({ action: 'keep', text: sql, definers: [] });
    }
  });

  test('refuses other databases, database-level statements and ambiguous names, saying what to do', () => {
    expect(confineStatement('INSERT INTO other.o VALUES (1)', ctx)).toMatchObject({ action: 'refuse', reason: expect.stringMatching(/names database `other`/) });
    expect(confineStatement('UPDATE a.b.c SET x = 1', ctx)).toMatchObject({ action: 'refuse', reason: expect.stringMatching(/names database `a`/) });
    expect(confineStatement('DROP DATABASE live', ctx)).toMatchObject({ action: 'refuse', reason: expect.stringMatching(/DROP DATABASE `live`/), fix: expect.stringMatching(/before it/) });
    expect(confineStatement('UPDATE t AS live SET live.v = 1 WHERE live.id IN (SELECT id FROM live.t)', ctx)).toMatchObject({ action: 'refuse', reason: expect.stringMatching(/both as a database and as another name/) });
    expect(confineStatement("SELECT 'abc", ctx)).toMatchObject({ action: 'refuse', reason: expect.stringMatching(/cannot be read/) });
  });

  test('skips account management', () => {
    for (const sql of ["create user scoped@localhost identified by 'pw'", 'GRANT ALL ON *.* TO x', "SET PASSWORD FOR x = 'y'", 'FLUSH PRIVILEGES']) {
      expect(confineStatement(sql, ctx).action).toBe('skip');
    }
  });

  test('DEFINER becomes CURRENT_USER and the original is recorded (binlog and dump forms)', () => {
    const binlog = confineStatement('CREATE DEFINER=`root`@`localhost` trigger live.tr before insert on live.t for each row set new.v = upper(new.v)', ctx);
    expect(binlog).toMatchObject({
      action: 'rewrite',
      text: 'CREATE DEFINER=CURRENT_USER trigger `live_iso`.tr before insert on `live_iso`.t for each row set new.v = upper(new.v)',
      definers: [{ type: 'TRIGGER', name: 'tr', definer: '`root`@`localhost`' }],
    });
    const dump = confineStatement(
      "/*!50003 CREATE*/ /*!50017 DEFINER=`app`@`%`*/ /*!50003 TRIGGER `orders_audit` AFTER UPDATE ON `orders` FOR EACH ROW INSERT INTO `live`.audit_log (order_id) VALUES (NEW.id) */",
      ctx,
    );
    expect(dump).toMatchObject({
      action: 'rewrite',
      text: '/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER `orders_audit` AFTER UPDATE ON `orders` FOR EACH ROW INSERT INTO `live_iso`.audit_log (order_id) VALUES (NEW.id) */',
      definers: [{ type: 'TRIGGER', name: 'orders_audit', definer: '`app`@`%`' }],
    });
    const view = confineStatement('/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select `c`.`id` AS `id` from `live`.`customers` `c` */', ctx);
    expect(view).toMatchObject({ action: 'rewrite', definers: [{ type: 'VIEW', name: 'v', definer: '`root`@`localhost`' }] });
    expect((view as { text: string }).text).toContain('from `live_iso`.`customers` `c`');
    const proc = confineStatement("CREATE DEFINER='root'@'%' PROCEDURE `p`(IN x INT) UPDATE t SET definer = 'me' WHERE id = x", ctx);
    expect(proc).toMatchObject({ action: 'rewrite', text: "CREATE DEFINER=CURRENT_USER PROCEDURE `p`(IN x INT) UPDATE t SET definer = 'me' WHERE id = x", definers: [{ type: 'PROCEDURE', name: 'p', definer: "'root'@'%'" }] });
  });

  test('events are restored disabled', () => {
    expect(confineStatement('CREATE DEFINER=root@localhost EVENT e ON SCHEDULE EVERY 1 DAY ENABLE DO DELETE FROM t', ctx)).toMatchObject({
      text: 'CREATE DEFINER=CURRENT_USER EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM t',
    });
    expect(confineStatement('CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t', ctx)).toMatchObject({ text: 'CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM t' });
    expect(confineStatement('ALTER EVENT e ENABLE', ctx)).toMatchObject({ text: 'ALTER EVENT e DISABLE' });
    expect(confineStatement('CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM t', ctx).action).toBe('keep');
  });
});

/** A table map event for db.table followed by a (fake) write-rows event, as BINLOG base64. */
function rowEventBase64(db: string, table: string): string {
  const event = (type: number, body: number[]) => {
    const size = 19 + body.length;
    const header = [0, 0, 0, 0, type, 5, 0, 0, 0, size & 0xff, (size >> 8) & 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
    return [...header, ...body];
  };
  const enc = (s: string) => [...Buffer.from(s)];
  const tableMap = event(19, [1, 0, 0, 0, 0, 0, 1, 0, db.length, ...enc(db), 0, table.length, ...enc(table), 0, 1, 3, 0, 0]);
  const rows = event(30, [1, 0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 255, 0, 7, 0, 0, 0]);
  return Buffer.from([...tableMap, ...rows]).toString('base64');
}

function binlogText(statements: string[]): string {
  return ['/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;', 'DELIMITER /*!*/;', ...statements, 'DELIMITER ;', '# End of log file', 'ROLLBACK /* added by mysqlbinlog */;', ''].join('\n');
}

describe('ReplayStream', () => {
  const window = binlogText([
    '# at 421',
    'use `live_iso`/*!*/;',
    '#261201 22:50:52 server id 5  end_log_pos 541 CRC32 0x437c0932 \tQuery\tthread_id=5\texec_time=0\terror_code=0\txid=13',
    'SET TIMESTAMP=1796165452/*!*/;',
    '/*!\\C utf8mb3 *//*!*/;',
    'create table live.probe (id int primary key)',
    '/*!*/;',
    '# at 541',
    '#261201 22:50:52 server id 5  end_log_pos 583 CRC32 0xc106d857 \tGTID 0-5-7 trans',
    '/*M!100001 SET @@session.gtid_seq_no=7*//*!*/;',
    'START TRANSACTION',
    '/*!*/;',
    '# at 583',
    "insert into t values (1, 'a;/*!*/;')",
    "/*!*/;",
    'COMMIT/*!*/;',
    '# at 700',
    '#261201 22:50:52 server id 5  end_log_pos 800 CRC32 0x0 \tRotate to binlog.000003  pos: 4',
    '# at 900',
    'BINLOG \'',
    rowEventBase64('live_iso', 't'),
    "'/*!*/;",
  ]);

  test('replay: rewrites, drops the source GTIDs, passes row events of the target, maps lines to positions', () => {
    const stream = new ReplayStream({ mode: 'replay', context: ctx, firstFile: 'binlog.000002' });
    const out = [...stream.push(window.slice(0, 700)), ...stream.push(window.slice(700)), ...stream.finish()].join('');
    expect(out).toContain('create table `live_iso`.probe (id int primary key)\n/*!*/;');
    expect(out).not.toContain('gtid_seq_no');
    expect(out).toContain("insert into t values (1, 'a;/*!*/;')");
    expect(out).toContain(rowEventBase64('live_iso', 't'));
    const createLine = out.split('\n').findIndex((l) => l.startsWith('create table')) + 1;
    expect(stream.positionAtLine(createLine)).toEqual({ file: 'binlog.000002', position: 421, statement: 'create table live.probe (id int primary key)' });
    const binlogLine = out.split('\n').findIndex((l) => l.startsWith("BINLOG '")) + 1;
    expect(stream.positionAtLine(binlogLine)).toMatchObject({ file: 'binlog.000003', position: 900 });
    expect(stream.report.rewritten).toEqual([{ file: 'binlog.000002', position: 421, statement: 'create table live.probe (id int primary key)', changes: ['`live`. -> `live_iso`.'] }]);
  });

  test('a row event for another database stops the replay before its statement is complete', () => {
    const bad = binlogText(['# at 1000', "BINLOG '", rowEventBase64('other', 'o'), "'/*!*/;"]);
    const stream = new ReplayStream({ mode: 'replay', context: ctx, firstFile: 'binlog.000002' });
    let emitted = '';
    expect(() => {
      for (const piece of stream.push(bad)) emitted += piece;
    }).toThrow(ReplayRefused);
    expect(emitted).not.toContain('BINLOG');
  });

  test('the real MariaDB row event of other.o is recognised', () => {
    const real = binlogText(['# at 1000', "BINLOG '", 'UE8PaxMFAAAALQAAAN8BAAAAABgAAAAAAAEABW90aGVyAAFvAAEDAAC6ikVu', 'UE8PaxcFAAAAJgAAAAUCAAAAABgAAAAAAAEAAQH+BwAAANWrPA4=', "'/*!*/;"]);
    const stream = new ReplayStream({ mode: 'scan', context: ctx, firstFile: 'binlog.000003' });
    stream.push(real);
    stream.finish();
    expect(stream.report.refused).toEqual([expect.objectContaining({ file: 'binlog.000003', position: 1000, statement: 'row event for other.o' })]);
  });

  test('scan: collects every refusal with its position, writes nothing', () => {
    const text = binlogText(['# at 10', 'use `live_iso`/*!*/;', 'DROP DATABASE live', '/*!*/;', '# at 20', 'insert into other.o values (1)', '/*!*/;', '# at 30', "create user x@'%' identified by 'pw'", '/*!*/;']);
    const stream = new ReplayStream({ mode: 'scan', context: ctx, firstFile: 'binlog.000001' });
    expect(stream.push(text)).toEqual([]);
    stream.finish();
    expect(stream.report.refused.map((r) => [r.position, r.statement])).toEqual([
      [10, 'DROP DATABASE live'],
      [20, 'insert into other.o values (1)'],
    ]);
    expect(stream.report.skipped.map((s) => s.position)).toEqual([30]);
  });

  test('crossScan: a statement on the source from another default database is refused (the filter would drop it)', () => {
    const text = binlogText(['# at 10', 'use `other`/*!*/;', 'ALTER TABLE live.t ADD c INT', '/*!*/;', '# at 20', 'use `live`/*!*/;', 'ALTER TABLE live.t ADD d INT', '/*!*/;']);
    const stream = new ReplayStream({ mode: 'crossScan', context: ctx, firstFile: 'binlog.000001' });
    stream.push(text);
    stream.finish();
    expect(stream.report.refused.map((r) => r.position)).toEqual([10]);
    expect(stream.report.refused[0]?.reason).toMatch(/while other was the default database/);
  });
});
