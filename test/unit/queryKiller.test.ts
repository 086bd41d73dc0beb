import { parseConfig } from '../../src/config/load';

const loadConfigFromObject = (doc: unknown) => parseConfig(JSON.stringify(doc), 'test.yaml', '/tmp');
import { desiredFromConfig } from '../../src/client/schedules';
import { chooseVictims, digestOf, isDdl, killAlert, type KillPolicy, type KillReport, type ProcessRow } from '../../src/domain/queryKiller';

const policy: KillPolicy = { busySeconds: 60, match: { command: '^Query$' }, ignore: [{ user: '^report_' }], killDdl: false, maxPerRun: 10, mode: 'query', dryRun: false };
const own = { users: ['dbops', 'dbops_restore'], prefixes: ['dbops_r_'], connectionId: 7 };

let next = 100;
function row(over: Partial<ProcessRow>): ProcessRow {
  return { id: next++, user: 'app', host: '10.0.0.5:51234', db: 'shop', command: 'Query', timeSeconds: 120, state: 'User sleep', info: 'SELECT SLEEP(300)', queryId: null, rowsExamined: 0, ...over };
}

describe('chooseVictims', () => {
  test('only busy, matching, not ignored statements; the longest first; the cap counted', () => {
    const rows = [
      row({ id: 1, timeSeconds: 61 }),
      row({ id: 2, timeSeconds: 900, info: "SELECT * FROM orders WHERE note = 'x'" }),
      row({ id: 3, timeSeconds: 59 }),
      row({ id: 4, user: 'report_daily' }),
      row({ id: 5, command: 'Sleep', info: null, timeSeconds: 5000 }),
      row({ id: 6, command: 'Execute' }),
    ];
    const { victims, spared } = chooseVictims(rows, policy, own);
    expect(victims.map((v) => v.id)).toEqual([2, 1]);
    expect(spared).toMatchObject({ 'not-busy': 2, ignored: 1, 'no-match': 1, 'over-cap': 0 });
    const capped = chooseVictims(rows, { ...policy, maxPerRun: 1 }, own);
    expect(capped.victims.map((v) => v.id)).toEqual([2]);
    expect(capped.spared['over-cap']).toBe(1);
  });

  test('replication, system threads, dbops accounts, itself and DDL are never victims, even when the policy matches everything', () => {
    const all: KillPolicy = { ...policy, match: {}, ignore: [], busySeconds: 0 };
    const rows = [
      row({ id: 7, info: 'SHOW PROCESSLIST' }),
      row({ id: 8, command: 'Binlog Dump GTID', user: 'repl', info: null }),
      row({ id: 9, command: 'Binlog Dump', user: 'repl', info: 'x' }),
      row({ id: 10, user: 'system user', command: 'Slave_SQL', info: 'x' }),
      row({ id: 11, user: 'event_scheduler', command: 'Daemon', info: 'x' }),
      row({ id: 12, user: 'dbops', info: 'SELECT /*!40001 SQL_NO_CACHE */ * FROM big' }),
      row({ id: 13, user: 'dbops_r_1a2b3c', info: 'INSERT INTO t VALUES (1)' }),
      row({ id: 14, info: '/* migration */ ALTER TABLE orders ADD INDEX (created_at)' }),
      row({ id: 15, info: 'select 1' }),
    ];
    const { victims, spared } = chooseVictims(rows, all, own);
    expect(victims.map((v) => v.id)).toEqual([15]);
    expect(spared).toMatchObject({ self: 1, replication: 3, system: 1, dbops: 2, ddl: 1 });
    expect(chooseVictims(rows, { ...all, killDdl: true }, own).victims.map((v) => v.id)).toEqual([14, 15]);
  });

  test('patterns are case-insensitive and see the host without its port', () => {
    const rows = [row({ id: 20, host: 'batch-7.internal:40000' }), row({ id: 21, host: 'web-1.internal:40001' })];
    expect(chooseVictims(rows, { ...policy, match: { host: '^BATCH-\\d+\\.internal$' } }, own).victims.map((v) => v.id)).toEqual([20]);
  });
});

describe('digestOf', () => {
  test('values and comments never reach the digest text; other values give the same digest', () => {
    const a = digestOf("SELECT * FROM users WHERE email = 'ann@example.com' AND pw = 'hunter2' /* token abc123 */ AND id IN (1, 2, 3)");
    const b = digestOf("select *   from users where email = 'bob@example.com' and pw = 'x' and id in (9)");
    expect(a.digest).toBe(b.digest);
    expect(a.text).toBe('select * from users where email = ? and pw = ? and id in (?)');
    for (const secret of ['ann@', 'hunter2', 'abc123']) expect(a.text).not.toContain(secret);
    expect(digestOf("SET PASSWORD FOR 'a'@'%' = 'sekrit -- not a comment'").text).toBe('set password for ?@? = ?');
    expect(digestOf("SELECT 'unterminated sekrit").text).toBe('select ?');
    expect(digestOf('SELECT 0xDEADBEEF, x\'0a\', -4.5e3, `col1`').text).toBe('select ?, ?, ?, `col1`');
    expect(digestOf('SELECT 1').digest).toMatch(/^[0-9a-f]{16}$/);
  });

  test('no value survives quotes inside names, either backslash reading, bit literals or anything unclosed', () => {
    const cases = [
      "SELECT `user's email` FROM t WHERE token='hunter2x'",
      "SELECT * FROM t WHERE path='C:\\' AND pw='hunter2x'", // NO_BACKSLASH_ESCAPES reads this as two strings
      "SELECT * FROM t WHERE pw='it\\'s hunter2x'", // the default reading: one string
      'SELECT * FROM t WHERE f = 0b101101 AND pw = "hunter2x',
      'SELECT `unclosed hunter2x',
      "SELECT 1 /* hunter2x",
    ];
    for (const sql of cases) {
      const { text } = digestOf(sql);
      expect([sql, text.includes('hunter2x') || text.includes('101101')]).toEqual([sql, false]);
    }
    expect(digestOf("SELECT `user's email` FROM t WHERE token='x'").text).toBe("select `user's email` from t where token=?");
  });

  test('DDL is recognised behind comments', () => {
    expect(isDdl('/* pt-osc */ -- x\n  alter table t add index (a)')).toBe(true);
    expect(isDdl('SELECT * FROM alter_log')).toBe(false);
  });
});

describe('the report alert', () => {
  const base: KillReport = {
    formatVersion: 1,
    cluster: 'shop',
    runKey: '20261202T120000Z-0123abcd',
    observedAt: '2026-12-02T12:00:00.000Z',
    finishedAt: '2026-12-02T12:00:01.000Z',
    dryRun: false,
    mode: 'query',
    busySeconds: 60,
    sessions: 40,
    spared: { 'not-busy': 39, replication: 0, system: 0, dbops: 0, self: 0, ddl: 0, 'no-match': 0, ignored: 0, 'over-cap': 0 },
    records: [],
    requestedBy: null,
    workflow: { workflowId: 'w', runId: 'r' },
  };
  test('nothing to say when nothing was killed; a warning naming who and what when something was', () => {
    expect(killAlert(base, null)).toBeNull();
    const v = { id: 5, queryId: null, user: 'app', host: '10.0.0.5:5555', db: 'shop', command: 'Query', timeSeconds: 75, rowsExamined: 10, digest: '0123456789abcdef', digestText: 'select sleep(?)' };
    expect(killAlert({ ...base, records: [{ ...v, outcome: 'gone', mode: 'query' }] }, null)).toBeNull();
    const alert = killAlert({ ...base, records: [{ ...v, outcome: 'killed', mode: 'query' }] }, 'shop/query-killer/x.json');
    expect(alert).toMatchObject({ severity: 'warning', event: 'slow-queries-killed', cluster: 'shop' });
    expect(alert?.message).toContain('1 statement(s) over 60 s killed of 40 session(s)');
    expect(alert?.message).toContain('app@10.0.0.5 75 s: select sleep(?)');
  });
});

describe('configuration', () => {
  const cluster = { name: 'shop', host: '127.0.0.1', user: 'dbops' };
  const doc = (queryKiller: unknown) => ({ temporal: {}, repository: { path: '/tmp/r' }, clusters: [{ ...cluster, queryKiller }] });

  test('a pattern that is not a regular expression is refused naming the field', () => {
    expect(() => loadConfigFromObject(doc({ ignore: [{ user: '^ok$' }, { user: '(' }] }))).toThrow(/clusters\[0\]\.queryKiller\.ignore\[1\]\.user: not a regular expression/);
  });

  test('defaults: a minute, KILL QUERY, Query commands only, no dry run; the schedule follows the cluster', () => {
    const config = loadConfigFromObject(doc({}));
    expect(config.clusters[0]!.queryKiller).toMatchObject({ busyTime: '60s', every: '1m', mode: 'query', match: { command: '^Query$' }, dryRun: false, maxPerRun: 10, killDdl: false });
    expect(desiredFromConfig(config).filter((d) => d.action === 'query-killer')).toEqual([expect.objectContaining({ id: 'dbops/shop/query-killer', every: '1m', cron: null })]);
    expect(desiredFromConfig(loadConfigFromObject({ ...doc({}), clusters: [cluster] })).some((d) => d.action === 'query-killer')).toBe(false);
  });
});
