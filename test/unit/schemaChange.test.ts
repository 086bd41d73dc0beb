import {
  changeStatement,
  overLimit,
  parseIndexChange,
  planAccesses,
  preflightRefusals,
  rollbackOf,
  sameIndex,
  SchemaChangeRefused,
  startHeld,
  tableAliases,
  usesIndex,
  verificationFailure,
  verifyQueryProblem,
  type AddIndex,
  type Preflight,
  type WatchLimits,
} from '../../src/domain/schemaChange';
import { SchemaChangeInputSchema } from '../../src/domain/inputs';
import { parseConfig } from '../../src/config/load';
import { progressText } from '../../src/activities/schemaChange';

describe('reading the operator statement', () => {
  test.each([
    ['ALTER TABLE orders ADD INDEX idx_created (created_at)', { kind: 'add-index', table: 'orders', index: 'idx_created', unique: false, columns: [{ name: 'created_at', prefix: null, desc: false }] }],
    ['alter table `shop`.`orders` add unique key `uq_ref` (`ref`(20), created_at DESC);', { kind: 'add-index', table: 'orders', index: 'uq_ref', unique: true, columns: [{ name: 'ref', prefix: 20, desc: false }, { name: 'created_at', prefix: null, desc: true }] }],
    ['CREATE INDEX idx_update_time ON user (update_time) USING BTREE', { kind: 'add-index', table: 'user', index: 'idx_update_time', unique: false, columns: [{ name: 'update_time', prefix: null, desc: false }] }],
    ['DROP INDEX idx_update_time ON user', { kind: 'drop-index', table: 'user', index: 'idx_update_time' }],
    ['ALTER TABLE /* why */ orders DROP KEY idx_x', { kind: 'drop-index', table: 'orders', index: 'idx_x' }],
  ])('%s', (sql, expected) => {
    expect(parseIndexChange(sql, 'shop')).toEqual(expected);
  });

  test.each([
    ['ALTER TABLE orders ADD COLUMN x INT', /only ADD \[UNIQUE\] INDEX/],
    ['ALTER TABLE orders ADD INDEX (created_at)', /an index name/],
    ['ALTER TABLE orders ADD INDEX a (x), ADD INDEX b (y)', /one index per run/],
    ['ALTER TABLE orders ADD INDEX a (x), ALGORITHM=COPY', /one index per run/],
    ['ALTER TABLE orders ADD INDEX a (x) LOCK=EXCLUSIVE', /set by dbops/],
    ['ALTER TABLE other.orders ADD INDEX a (x)', /names database other, but the run is for shop/],
    ['ALTER TABLE orders ADD INDEX a (x); DROP TABLE orders', /one change per run/],
    ['ALTER TABLE orders ADD INDEX a ((lower(x)))', /functional/],
    ['/*!50000 DROP TABLE orders */ ALTER TABLE orders ADD INDEX a (x)', /executable comments/],
    ['DROP TABLE orders', /expected INDEX/],
    ['TRUNCATE orders', /expected ALTER or CREATE or DROP/],
    ['ALTER TABLE `ord``ers` ADD INDEX a (x)', /not a name dbops accepts/],
    ['CREATE FULLTEXT INDEX f ON orders (note)', /FULLTEXT/],
    ['ALTER TABLE orders DROP INDEX PRIMARY', /primary key/],
    ["ALTER TABLE orders ADD INDEX a (x) COMMENT 'y'", /unexpected/],
  ])('refuses %s', (sql, why) => {
    expect(() => parseIndexChange(sql, 'shop')).toThrow(SchemaChangeRefused);
    expect(() => parseIndexChange(sql, 'shop')).toThrow(why);
  });

  test('the worker builds its own statement, online, and the rollback drops what it added', () => {
    const add = parseIndexChange('create unique index u on orders (ref(8) desc, id)', 'shop');
    expect(changeStatement('shop', add)).toBe('ALTER TABLE `shop`.`orders` ADD UNIQUE INDEX `u` (`ref`(8) DESC, `id`), ALGORITHM=INPLACE, LOCK=NONE');
    expect(changeStatement('shop', rollbackOf(add)!)).toBe('ALTER TABLE `shop`.`orders` DROP INDEX `u`, ALGORITHM=INPLACE, LOCK=NONE');
    expect(rollbackOf(parseIndexChange('DROP INDEX u ON orders', 'shop'))).toBeNull();
  });

  test('a run input carries names: a change with a hostile name or a system database is refused before anything runs', () => {
    const base = { cluster: 'shop', database: 'shop', change: { kind: 'add-index', table: 'orders', index: 'i', unique: false, columns: [{ name: 'x', prefix: null, desc: false }] } };
    expect(SchemaChangeInputSchema.safeParse(base).success).toBe(true);
    expect(SchemaChangeInputSchema.safeParse({ ...base, database: 'mysql' }).success).toBe(false);
    expect(SchemaChangeInputSchema.safeParse({ ...base, change: { ...base.change, table: 'orders`; DROP TABLE x; --' } }).success).toBe(false);
    expect(SchemaChangeInputSchema.safeParse({ ...base, verifyQueries: ['DELETE FROM orders'] }).success).toBe(false);
  });
});

describe('verify queries', () => {
  test.each([
    ["SELECT id FROM orders WHERE created_at > NOW() - INTERVAL 1 DAY AND status IN ('paid', 'new')", null],
    ["select count(*) from orders o join users u on u.id = o.user_id where o.note = 'a;b' and date(o.created_at) = '2026-01-01';", null],
    ['SELECT id FROM orders WHERE created_at > ?', /placeholders/],
    ['SELECT * FROM orders WHERE id = 1.5INTO OUTFILE "/tmp/x"', /number joined to a word|INTO|double-quoted/],
    ['SELECT * FROM orders WHERE id = 1.0FOR UPDATE', /number joined to a word/],
    ['SELECT `SLEEP`(25)', /SLEEP`\(\) is not accepted/],
    ['SELECT id FROM orders WHERE id = shop.f(1)', /f\(\) is not accepted/],
    ["SELECT id FROM orders WHERE id = MASTER_GTID_WAIT('0-1-1', 60)", /MASTER_GTID_WAIT\(\) is not accepted/],
    ['SELECT NEXT VALUE FOR s', /sequences/],
    ['SELECT /*+ MAX_EXECUTION_TIME(100000000) */ id FROM orders', /comments/],
    ['SELECT id FROM orders -- why', /comments/],
    ["SELECT 'a\\nb'", /backslashes/],
    ['SELECT id FROM orders WHERE id = (SELECT MAX(id) FROM orders)', /subqueries/],
    ['SELECT id FROM orders UNION SELECT id FROM orders', /subqueries and UNION/],
    ['SELECT * FROM orders PROCEDURE ANALYSE()', /PROCEDURE/],
    ['DELETE FROM orders', /not a SELECT/],
    ['SELECT 1; DELETE FROM orders', /more than one statement/],
    ['SELECT id INTO @x FROM orders', /variables|INTO/],
    ["SELECT * FROM orders INTO OUTFILE '/tmp/x'", /INTO/],
    ['SELECT * FROM orders FOR UPDATE', /locking reads/],
    ['SELECT * FROM orders LOCK IN SHARE MODE', /locking reads/],
    ['SELECT SLEEP(10)', /SLEEP/],
    ['SELECT GET_LOCK("x", 10)', /GET_LOCK/],
    ['SELECT /*!99999 1; DROP TABLE x */ 1', /comments/],
  ])('%s', (sql, problem) => {
    const got = verifyQueryProblem(sql as string, 'shop');
    if (problem === null) expect(got).toBeNull();
    else expect(got).toMatch(problem as RegExp);
  });

  test("a verify query reads the run's database only", () => {
    expect(verifyQueryProblem('SELECT user FROM mysql.user', 'shop')).toMatch(/reads mysql\.user: verify queries read the run's database \(shop\) only/);
    expect(verifyQueryProblem('SELECT 1 FROM orders o JOIN other.t x ON x.id = o.id', 'shop')).toMatch(/reads other\.t/);
    expect(verifyQueryProblem('SELECT 1 FROM orders o, other.t x WHERE x.id = o.id', 'shop')).toMatch(/reads other\.t/);
    expect(verifyQueryProblem('SELECT o.id FROM shop.orders o WHERE o.id = 1', 'shop')).toBeNull();
  });

  const mariadb = {
    query_block: {
      select_id: 1,
      nested_loop: [
        { table: { table_name: 'o', access_type: 'range', possible_keys: ['idx_created'], key: 'idx_created', rows: 1440, attached_condition: "o.note = 'secret'" } },
        { table: { table_name: 'u', access_type: 'eq_ref', possible_keys: ['PRIMARY'], key: 'PRIMARY', rows: 1 } },
      ],
    },
  };
  const mysqlV1 = { query_block: { select_id: 1, table: { table_name: 'orders', access_type: 'ALL', possible_keys: null, rows_examined_per_scan: 998000 } } };
  const mysqlV2 = { query: '/* select#1 */ select ...', inputs: [{ access_type: 'index', index_name: 'sort_union(idx_a,idx_created)', table_name: 'orders', estimated_rows: 10 }] };

  test('plans read from both products, formats 1 and 2, with no query text kept', () => {
    expect(planAccesses(mariadb)).toEqual([
      { table: 'o', accessType: 'range', key: 'idx_created', possibleKeys: ['idx_created'], rows: 1440 },
      { table: 'u', accessType: 'eq_ref', key: 'PRIMARY', possibleKeys: ['PRIMARY'], rows: 1 },
    ]);
    expect(planAccesses(mysqlV1)).toEqual([{ table: 'orders', accessType: 'ALL', key: null, possibleKeys: [], rows: 998000 }]);
    expect(JSON.stringify(planAccesses(mariadb))).not.toContain('secret');
    expect(usesIndex(planAccesses(mysqlV2), ['orders'], 'idx_created')).toBe(true);
  });

  test("the new index counts only on the changed table, under its aliases (another table's index of the same name does not)", () => {
    const sql = 'SELECT * FROM orders AS o JOIN users u ON u.id = o.user_id';
    expect(tableAliases(sql, 'orders')).toEqual(['orders', 'o']);
    expect(usesIndex(planAccesses(mariadb), tableAliases(sql, 'orders'), 'idx_created')).toBe(true);
    expect(usesIndex(planAccesses(mariadb), tableAliases(sql, 'users'), 'idx_created')).toBe(false);
    const change = parseIndexChange('CREATE INDEX idx_created ON orders (created_at)', 'shop');
    expect(verificationFailure(change, [{ query: 0, accesses: planAccesses(mysqlV1), usesIndex: false }])).toBe('verify query 1 does not use idx_created (plan: orders ALL via no index)');
    expect(verificationFailure(change, [{ query: 0, accesses: [], usesIndex: true }])).toBeNull();
  });
});

describe('preflight', () => {
  const change = parseIndexChange('ALTER TABLE orders ADD INDEX idx_created (created_at)', 'shop');
  const table = { engine: 'InnoDB', rowsEstimate: 1e6, dataBytes: 80 * 2 ** 20, indexBytes: 20 * 2 ** 20, columns: ['id', 'created_at'], indexes: { PRIMARY: [{ column: 'id', subPart: null, nonUnique: false, collation: 'A' }] } };
  const ok: Preflight = { table, freeBytes: 50 * 2 ** 30, freeOn: '/var/lib/mysql', onlineRefusal: null, blockers: [] };
  const limits = { headroomBytes: 10 * 2 ** 30 };

  test('nothing in the way: no refusal', () => {
    expect(preflightRefusals('shop', change, ok, limits)).toEqual([]);
  });
  test('each refusal names what to fix', () => {
    expect(preflightRefusals('shop', change, { ...ok, table: null }, limits)).toEqual(['table shop.orders does not exist']);
    expect(preflightRefusals('shop', change, { ...ok, freeBytes: 10 * 2 ** 30 }, limits)).toEqual([expect.stringMatching(/10.0 GiB free on \/var\/lib\/mysql, the build needs the table's 100.0 MiB plus the 10.0 GiB headroom/)]);
    expect(preflightRefusals('shop', change, { ...ok, table: { ...table, engine: 'MyISAM' } }, limits)).toEqual([expect.stringMatching(/MyISAM, not InnoDB/)]);
    expect(preflightRefusals('shop', change, { ...ok, table: { ...table, columns: ['id'] } }, limits)).toEqual(['shop.orders has no column created_at']);
    expect(preflightRefusals('shop', change, { ...ok, onlineRefusal: 'LOCK=NONE is not supported (1846)' }, limits)).toEqual(['the server cannot run it online: LOCK=NONE is not supported (1846)']);
    expect(preflightRefusals('shop', parseIndexChange('DROP INDEX nope ON orders', 'shop'), ok, limits)).toEqual(['shop.orders has no index named nope']);
  });
  test('an existing index is the same one only when every part matches', () => {
    const add = change as AddIndex;
    expect(sameIndex(add, [{ column: 'created_at', subPart: null, nonUnique: true, collation: 'A' }])).toBe(true);
    expect(sameIndex(add, [{ column: 'created_at', subPart: null, nonUnique: false, collation: 'A' }])).toBe(false);
    expect(sameIndex(add, [{ column: 'created_at', subPart: 10, nonUnique: true, collation: 'A' }])).toBe(false);
    expect(sameIndex(add, [{ column: 'created_at', subPart: null, nonUnique: true, collation: 'D' }])).toBe(false);
  });
});

describe('watching the build', () => {
  const limits: WatchLimits = { pauseThreadsRunning: 32, abortThreadsRunning: 128, pauseReplicaLagSeconds: 60, abortReplicaLagSeconds: 300, abortMdlWaiters: 20, abortAfter: 3 };
  const quiet = { threadsRunning: 3, replicas: [{ cluster: 'r1', lagSeconds: 0 }], mdlWaiters: 0, blockers: 0 };
  test('the start waits for a quiet server with nothing in the way', () => {
    expect(startHeld(quiet, limits)).toBeNull();
    expect(startHeld({ ...quiet, threadsRunning: 40 }, limits)).toBe('Threads_running 40 > 32');
    expect(startHeld({ ...quiet, replicas: [{ cluster: 'r1', lagSeconds: 61 }] }, limits)).toBe('replica r1 61 s behind > 60 s');
    expect(startHeld({ ...quiet, replicas: [{ cluster: 'r1', lagSeconds: null }] }, limits)).toBe('replica r1 is not replicating');
    expect(startHeld({ ...quiet, blockers: 2 }, limits)).toMatch(/2 session/);
  });
  test('the abort limits', () => {
    expect(overLimit({ ...quiet, threadsRunning: 100 }, limits)).toBeNull();
    expect(overLimit({ ...quiet, threadsRunning: 129 }, limits)).toBe('Threads_running 129 > 128');
    expect(overLimit({ ...quiet, replicas: [{ cluster: 'r1', lagSeconds: 301 }] }, limits)).toBe('replica r1 301 s behind > 300 s');
    expect(overLimit({ ...quiet, mdlWaiters: 21 }, limits)).toMatch(/21 sessions queued/);
  });
});

describe('config', () => {
  const yaml = (extra: string) => `temporal: { address: localhost:7233 }\nrepository: { path: /tmp/r }\nclusters:\n  - { name: shop, host: db, user: u${extra} }\n`;
  test('defaults follow the runbook: 10 GiB headroom, a 5 s lock wait, replicas named as clusters', () => {
    const c = parseConfig(yaml(''), '/tmp/x.yaml', '/tmp').clusters[0]!;
    expect(c.schemaChange).toMatchObject({ diskHeadroomGiB: 10, lockWait: '5s', abortAfter: 3, watchFor: '15m', replicas: [] });
    expect(() => parseConfig(yaml(', schemaChange: { replicas: [nope] }'), '/tmp/x.yaml', '/tmp')).toThrow(/clusters\[0\]\.schemaChange\.replicas\[0\].*unknown cluster "nope"/s);
    expect(() => parseConfig(yaml(', approvers: { schema-change: [alice] }'), '/tmp/x.yaml', '/tmp')).not.toThrow();
  });
});

describe('progress as the CLI and the UI show it', () => {
  test('the server\'s percent where it gives one, the load, and why the start waits', () => {
    const sample = { threadsRunning: 5, replicas: [{ cluster: 'r1', lagSeconds: 0 }], mdlWaiters: 0, blockers: 0 };
    expect(progressText({ phase: 'building', why: null, percent: 42.4, stage: '1/2', sample, lockTries: 1, seconds: 12.5 })).toBe('building: 42 % (1/2), Threads_running 5, replica r1 0 s behind (12.5 s)');
    expect(progressText({ phase: 'waiting', why: 'Threads_running 40 > 32', percent: null, stage: null, sample: { ...sample, threadsRunning: 40, mdlWaiters: 3 }, lockTries: 2, seconds: 3 })).toBe(
      'waiting: Threads_running 40 > 32, Threads_running 40, replica r1 0 s behind, 3 queued on a metadata lock, lock try 2 (3 s)',
    );
  });
});
