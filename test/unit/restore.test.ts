import { refuseDecision, approversFor, type ApprovalState } from '../../src/domain/approval';
import { DumpDatabaseFilter } from '../../src/domain/dumpRewrite';
import type { Manifest, ServerIdentity } from '../../src/domain/manifest';
import { planRestore } from '../../src/domain/restorePlan';
import { beforeMatching, parseTarget, stopDatetimeFor, TargetError } from '../../src/domain/restoreTarget';

describe('restore targets', () => {
  test('every form parses; bad ones say how to write them', () => {
    expect(parseTarget('2026-11-22T14:03:06Z')).toEqual({ kind: 'time', at: '2026-11-22T14:03:06Z' });
    expect(parseTarget('2026-11-22 14:03:06.5+00:00')).toEqual({ kind: 'time', at: '2026-11-22T14:03:06Z' });
    expect(parseTarget('binlog:binlog.000042:1234')).toEqual({ kind: 'position', file: 'binlog.000042', position: 1234 });
    expect(parseTarget('gtid:0-1-2030')).toEqual({ kind: 'gtid', gtid: '0-1-2030' });
    expect(parseTarget('latest')).toEqual({ kind: 'latest' });
    expect(() => parseTarget('2026-11-22T14:03:06+02:00')).toThrow(/not an ISO-8601 UTC time; write it like 2026-11-22T14:03:06Z/);
    expect(() => parseTarget('binlog:x')).toThrow(TargetError);
    expect(beforeMatching('DELETE FROM orders', '2026-11-22T14:00:00Z')).toEqual({ kind: 'beforeMatching', pattern: 'DELETE FROM orders', after: '2026-11-22T14:00:00Z' });
    expect(() => beforeMatching('(')).toThrow(/--before-matching: not a valid regular expression/);
    expect(stopDatetimeFor('2026-11-22T23:59:59Z')).toBe('2026-11-23 00:00:00');
  });
});

const server: ServerIdentity = { product: 'mariadb', version: '10.11', serverId: 1, serverUuid: null, hostname: 'db', binlogFormat: 'ROW', gtidMode: null };
function m(id: string, type: Manifest['type'], at: string, extra: Partial<Manifest> = {}): { manifest: Manifest; relativePath: string } {
  return {
    relativePath: `c/${type}/x/${id}`,
    manifest: {
      formatVersion: 1, id, type, encryption: null, cluster: 'c', status: 'verified', retentionClass: 'routine', parentId: null, baseFullId: null,
      startedAt: at, finishedAt: at.replace(':00.000Z', ':30.000Z'), verifiedAt: at, durationMs: 1, server, tool: { name: 't', version: '1' },
      databases: ['shop'], snapshot: null, binlogs: null, tables: [{ database: 'shop', table: 'orders', rows: 1 }],
      objects: { views: [], routines: 0, triggers: 0, events: 0 },
      artifacts: [{ name: 'dump.sql.zst', compression: 'zstd', size: 10, sha256: 'a'.repeat(64), rawSize: 10, rawSha256: 'b'.repeat(64) }],
      workflow: { workflowId: 'w', runId: 'r' }, requestedBy: null, reason: null, ...extra,
    },
  };
}
const binlogs = (files: string[], start: number) => ({
  startFile: files[0]!, startPosition: start, endFile: files[files.length - 1]!, endPosition: 900, files,
  firstEventTime: null, lastEventTime: null, gtids: [{ source: '0-1', first: '0-1-11', last: '0-1-40' }], transactions: 30,
});
const full = m('F', 'full', '2026-11-22T10:00:00.000Z', { snapshot: { file: 'binlog.000005', position: 700, gtidSet: '0-1-10' } });
const incA = m('A', 'incremental', '2026-11-22T11:00:00.000Z', { parentId: 'F', baseFullId: 'F', binlogs: binlogs(['binlog.000005', 'binlog.000006'], 700) });
const diff = m('D', 'differential', '2026-11-22T12:00:00.000Z', { parentId: 'F', baseFullId: 'F', binlogs: binlogs(['binlog.000005', 'binlog.000006', 'binlog.000007'], 700) });
const incB = m('B', 'incremental', '2026-11-22T13:00:00.000Z', { parentId: 'D', baseFullId: 'F', binlogs: binlogs(['binlog.000008'], 4) });
const all = [full, incA, diff, incB];
const plan = (target: Parameters<typeof planRestore>[0]['target'], backups = all) =>
  planRestore({ cluster: 'c', database: 'shop', target, backups, chainState: null, now: new Date('2026-11-22T20:00:00Z') });

describe('planRestore', () => {
  test('picks the full, then the shortest chain that covers the target', () => {
    const early = plan({ kind: 'time', at: '2026-11-22T10:45:00Z' });
    expect(early.ok && early.plan.chain.map((c) => c.id)).toEqual(['A']);
    const late = plan({ kind: 'time', at: '2026-11-22T12:30:00Z' });
    expect(late.ok && late.plan.chain.map((c) => c.id)).toEqual(['D', 'B']);
    expect(late.ok && late.plan.binlogs.map((b) => b.file)).toEqual(['binlog.000005', 'binlog.000006', 'binlog.000007', 'binlog.000008']);
    expect(late.ok && late.plan.stop).toEqual({ kind: 'datetime', value: '2026-11-22 12:30:01' });
    expect(late.ok && late.plan.start).toEqual({ file: 'binlog.000005', position: 700, gtidSet: '0-1-10' });
    const latest = plan({ kind: 'latest' });
    expect(latest.ok && latest.plan.chain.map((c) => c.id)).toEqual(['D', 'B']);
  });

  test('positions cut the replay at the target file; GTIDs need a backup that holds them', () => {
    const p = plan({ kind: 'position', file: 'binlog.000006', position: 123 });
    expect(p.ok && p.plan.binlogs.map((b) => b.file)).toEqual(['binlog.000005', 'binlog.000006']);
    expect(p.ok && p.plan.stop).toEqual({ kind: 'position', file: 'binlog.000006', position: 123 });
    const g = plan({ kind: 'gtid', gtid: '0-1-25' });
    expect(g.ok && g.plan.stop).toEqual({ kind: 'gtid', gtid: '0-1-25' });
    expect(plan({ kind: 'gtid', gtid: '0-1-99' })).toMatchObject({ ok: false });
  });

  test('outside the window, in the future, or an unknown database: refused with the window', () => {
    expect(plan({ kind: 'time', at: '2026-11-22T09:00:00Z' })).toEqual({
      ok: false,
      reason: 'no backups cover the end of 2026-11-22T09:00:00Z for database shop: the restorable window is 2026-11-22T10:00:30.000Z … 2026-11-22T13:00:00.000Z',
      window: { from: '2026-11-22T10:00:30.000Z', to: '2026-11-22T13:00:00.000Z' },
    });
    expect(plan({ kind: 'time', at: '2026-11-22T19:00:00Z' })).toMatchObject({ ok: false, reason: expect.stringMatching(/window is .* … 2026-11-22T13:00:00.000Z/) });
    expect(plan({ kind: 'time', at: '2027-01-01T00:00:00Z' })).toMatchObject({ ok: false, reason: 'the target 2027-01-01T00:00:00Z is in the future' });
    const other = planRestore({ cluster: 'c', database: 'billing', target: { kind: 'latest' }, backups: all, chainState: null, now: new Date() });
    expect(other).toMatchObject({ ok: false, reason: 'no full backup of database billing in cluster c (backed-up databases: shop)' });
  });
});

describe('DumpDatabaseFilter', () => {
  const dump = [
    '/*M!999999\\- enable the sandbox mode */ ',
    '/*!40101 SET NAMES utf8mb4 */;',
    '-- Current Database: `other`',
    'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `other`;',
    'USE `other`;',
    "INSERT INTO `t` VALUES (1,'other');",
    '-- Current Database: `shop`',
    'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;',
    'USE `shop`;',
    'INSERT INTO `orders` VALUES',
    "(1,'shop.orders `shop`.x stays as data'),",
    "(2,'b');",
    '/*!50003 CREATE*/ /*!50003 TRIGGER `shop`.`audit` AFTER UPDATE ON `shop`.`orders` FOR EACH ROW INSERT INTO shop.audit_log VALUES (1) */;;',
    '/*!50001 VIEW `v` AS select 1 AS `x` from `shopping`.`t` */;',
    '-- Dump completed',
    '',
  ].join('\n');

  test.each([1, 5, 4096])('selects one database, renames it and its qualified references, leaves data alone (chunks of %i)', (size) => {
    const filter = new DumpDatabaseFilter('shop', 'shop_restored', new Set(['shop', 'shopping', 'other']));
    const bytes = new TextEncoder().encode(dump);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) parts.push(...filter.push(bytes.subarray(i, i + size)));
    parts.push(...filter.finish());
    const out = Buffer.concat(parts).toString('utf8');
    expect(out).toBe(
      [
        '/*M!999999\\- enable the sandbox mode */ ',
        '/*!40101 SET NAMES utf8mb4 */;',
        '-- Current Database: `shop_restored` (restored from `shop`)',
        'USE `shop_restored`;',
        'INSERT INTO `orders` VALUES',
        "(1,'shop.orders `shop`.x stays as data'),",
        "(2,'b');",
        '/*!50003 CREATE*/ /*!50003 TRIGGER `shop_restored`.`audit` AFTER UPDATE ON `shop_restored`.`orders` FOR EACH ROW INSERT INTO `shop_restored`.audit_log VALUES (1) */;;',
        '/*!50001 VIEW `v` AS select 1 AS `x` from `shopping`.`t` */;',
        '-- Dump completed',
        '',
      ].join('\n'),
    );
    expect(filter.rewrittenReferences).toBe(1);
    expect(filter.warnings).toEqual([expect.stringMatching(/names database `shopping`.*VIEW `v`/)]);
  });

  test('DDL is read whole across lines and DELIMITER blocks: definers recorded and replaced, events disabled', () => {
    const ddl = [
      '-- Current Database: `shop`',
      'USE `shop`;',
      'DELIMITER ;;',
      "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `shop`.orders_audit AFTER UPDATE ON `shop`.orders FOR EACH ROW",
      "       INSERT INTO `shop`.audit_log (order_id, action) VALUES (NEW.id, CONCAT('status:;;', NEW.status)) ",
      '*/;;',
      '/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `purge_audit` ON SCHEDULE EVERY 1 DAY STARTS \'2026-12-01 23:00:52\' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM `shop`.audit_log WHERE at < NOW() - INTERVAL 90 DAY ',
      '*/ ;;',
      'DELIMITER ;',
      'CREATE TABLE `t` (',
      '  `id` int NOT NULL,',
      '  PRIMARY KEY (`id`)',
      ');',
      '',
    ].join('\n');
    const filter = new DumpDatabaseFilter('shop', 'shop_x', new Set(['shop']));
    const out = Buffer.concat([...filter.push(new TextEncoder().encode(ddl)), ...filter.finish()]).toString('utf8');
    expect(out).toContain('/*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER `shop_x`.orders_audit AFTER UPDATE ON `shop_x`.orders FOR EACH ROW\n');
    expect(out).toContain("INSERT INTO `shop_x`.audit_log (order_id, action) VALUES (NEW.id, CONCAT('status:;;', NEW.status)) \n*/;;\n");
    expect(out).toContain('ON COMPLETION NOT PRESERVE DISABLE DO DELETE FROM `shop_x`.audit_log');
    expect(out).toContain('CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n);\n');
    expect(filter.definers).toEqual([
      { type: 'TRIGGER', name: 'orders_audit', definer: '`root`@`localhost`' },
      { type: 'EVENT', name: 'purge_audit', definer: '`root`@`localhost`' },
    ]);
  });
});

describe('approval rules', () => {
  const state: ApprovalState = {
    action: 'restore-swap', cluster: 'shop', summary: 's', approvers: ['alice'], requestedAt: 'now', deadline: 'later',
    status: 'pending', decision: null, escalations: [], refused: [],
  };
  test('only listed approvers, with a reason, and only once', () => {
    expect(refuseDecision(state, { operator: 'alice', reason: 'ok' })).toBeNull();
    expect(refuseDecision(state, { operator: 'mallory', reason: 'ok' })).toBe('mallory is not an approver for restore-swap on shop (approvers: alice)');
    expect(refuseDecision(state, { operator: 'alice', reason: ' ' })).toBe('a reason is required (--reason TEXT)');
    expect(refuseDecision({ ...state, status: 'approved', decision: { decision: 'approved', by: 'alice', at: 't', reason: 'r' } }, { operator: 'alice', reason: 'x' })).toBe('already approved by alice at t');
    expect(refuseDecision(null, { operator: 'alice', reason: 'x' })).toBe('this run is not waiting for an approval');
    expect(approversFor({ '*': ['oncall'], 'restore-swap': ['dba'] }, 'restore-swap')).toEqual(['dba']);
    expect(approversFor({ '*': ['oncall'] }, 'archive-delete')).toEqual(['oncall']);
  });
});
