import {
  ArchiveJobSchema,
  archiveSql,
  archiveWorkflowId,
  DEFAULT_THROTTLE,
  parseDestination,
  predicateProblem,
  shapeMismatch,
  throttleDecision,
  verifyArchive,
  walkProblem,
  type RowChecksum,
} from '../../src/domain/archive';
import { parseConfig } from '../../src/config/load';
import { desiredSchedules } from '../../src/domain/schedules';

describe('the predicate', () => {
  test('one expression: quotes and parentheses balance, no statements, no comments', () => {
    expect(predicateProblem('created_at < NOW() - INTERVAL 90 DAY')).toBeNull();
    expect(predicateProblem("status IN ('paid', 'it''s; fine -- really') AND (id < 10)")).toBeNull();
    expect(predicateProblem('')).toMatch(/is empty/);
    expect(predicateProblem('id < 3; DROP TABLE orders')).toMatch(/contains ";"/);
    expect(predicateProblem('id < 3 -- old')).toMatch(/comment/);
    expect(predicateProblem('id < 3 /* x */')).toMatch(/comment/);
    expect(predicateProblem("status = 'paid")).toMatch(/unclosed ' quote/);
    expect(predicateProblem('(id < 3')).toMatch(/at the end: expected "\)"/);
    expect(predicateProblem('id < 3)')).toMatch(/"\)" at offset 6: unexpected/);
  });

  test('a predicate on the table\'s own columns: what else it may say is refused with the offending token', () => {
    for (const ok of [
      "created_at < NOW() - INTERVAL 90 DAY AND status IN ('paid', 'cancelled')",
      "DATE(created_at) <= CURDATE() - INTERVAL 1 YEAR OR (note IS NULL AND id BETWEEN 10 AND 20)",
      "TIMESTAMPDIFF(DAY, created_at, NOW()) > 90 AND note NOT LIKE 'keep%' ESCAPE '!'",
      "CAST(total AS DECIMAL(10,2)) > -1.5 AND COALESCE(note, '') <> 'x' AND created_at < DATE '2026-01-01'",
    ]) {
      expect([ok, predicateProblem(ok)]).toEqual([ok, null]);
    }
    const refused: Array<[string, RegExp]> = [
      ['id IN (SELECT id FROM mysql.user)', /subqueries are not allowed|expected a literal/],
      ['id < (SELECT COUNT(*) FROM mysql.user)', /"SELECT" at offset 6: subqueries are not allowed/],
      ['SLEEP(5) = 0', /"SLEEP" at offset 0: function SLEEP\(\) is not allowed/],
      ['RAND() < 0.5', /function RAND\(\) is not allowed/],
      ["LOAD_FILE('/etc/passwd') IS NOT NULL", /function LOAD_FILE\(\) is not allowed/],
      ['shop.my_function(id) = 1', /"shop" at offset 0: qualified names are not allowed/],
      ['my_function(id) = 1', /function my_function\(\) is not allowed/],
      ['created_at < SYSDATE()', /SYSDATE\(\) is not fixed by the run's timestamp/],
      ['id < @limit', /"@limit" at offset 5: variables are not allowed/],
      ['other.t.id = 1', /qualified names are not allowed/],
      ["note REGEXP '(a+)+$'", /"REGEXP" at offset 5: unexpected/],
      ['id = 1 || 1', /"\|\|" means different things/],
      ['BENCHMARK(1000000, MD5(1)) = 0', /function BENCHMARK\(\) is not allowed/],
    ];
    for (const [where, message] of refused) expect([where, predicateProblem(where)]).toEqual([where, expect.stringMatching(message)]);
  });
});

describe('jobs', () => {
  const base = { cluster: 'shop', database: 'shop', table: 'orders', where: 'created_at < NOW() - INTERVAL 90 DAY', to: 'orders_history' };
  test('defaults: 1,000-row batches and pt-online-schema-change\'s throttle', () => {
    const job = ArchiveJobSchema.parse(base);
    expect(job.batchSize).toBe(1000);
    expect(job.approval).toBe(true);
    expect(job.throttle).toMatchObject({ maxThreadsRunning: 25, abortThreadsRunning: 50 });
    expect(archiveWorkflowId(job)).toBe('archive/shop/shop.orders');
  });
  test('bad fields are named', () => {
    const issues = (input: object) => ArchiveJobSchema.safeParse({ ...base, ...input }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues({ to: 'shop.orders' })).toEqual(['to: the destination is the source table itself; archive into a history table']);
    expect(issues({ to: 'a b' })[0]).toMatch(/^to: a table, database.table or cluster:database.table/);
    expect(issues({ batchSize: 0 })[0]).toMatch(/^batchSize/);
    expect(issues({ where: 'x; y' })[0]).toMatch(/^where: the predicate contains ";"/);
    expect(issues({ throttle: { maxThreadsRunning: 30, abortThreadsRunning: 20 } })[0]).toMatch(/^throttle.abortThreadsRunning: abortThreadsRunning must be above/);
  });
  test('destinations: table, database.table, cluster:database.table', () => {
    const src = { cluster: 'shop', database: 'shop' };
    expect(parseDestination('h', src)).toEqual({ cluster: 'shop', database: 'shop', table: 'h' });
    expect(parseDestination('arch.h', src)).toEqual({ cluster: 'shop', database: 'arch', table: 'h' });
    expect(parseDestination('dw:arch.h', src)).toEqual({ cluster: 'dw', database: 'arch', table: 'h' });
    expect(parseDestination('dw:h', src)).toEqual({ cluster: 'dw', database: 'shop', table: 'h' });
    expect(parseDestination('a.b.c', src)).toBeNull();
  });
});

test('each range: locked, copied and deleted with the same predicate and bounds; never OFFSET', () => {
  const sql = archiveSql({ source: { database: 's', table: 'o' }, dest: { database: 's', table: 'h' }, columns: ['id', 'v'], key: 'id', where: 'v < 3', batchSize: 500, asOf: 1_790_000_000 });
  const range = '`id` >= ? AND `id` <= ? AND (v < 3)';
  expect(sql.take).toBe('SELECT `id` AS k FROM `s`.`o` WHERE `id` > ? AND `id` <= ? AND (v < 3) ORDER BY `id` LIMIT 500 FOR UPDATE');
  expect(sql.copy).toBe(`INSERT INTO \`s\`.\`h\` (\`id\`, \`v\`) SELECT \`id\`, \`v\` FROM \`s\`.\`o\` WHERE ${range}`);
  expect(sql.delete).toBe(`DELETE FROM \`s\`.\`o\` WHERE ${range}`);
  expect(sql.nextRange).toContain('WHERE `id` > ? AND `id` <= ? AND (v < 3) ORDER BY `id` LIMIT 500');
  expect(sql.session[0]).toBe('SET SESSION timestamp = 1790000000');
  expect(Object.values(sql).flat().join('\n')).not.toMatch(/OFFSET/i);
});

test('tables: a single-column primary key to walk; destinations must match column for column', () => {
  const shape = { columns: [{ name: 'id', type: 'bigint(20)', nullable: false }, { name: 'v', type: 'int(11)', nullable: true }], primaryKey: ['id'] };
  expect(walkProblem(shape)).toBeNull();
  expect(walkProblem({ ...shape, primaryKey: [] })).toMatch(/no primary key/);
  expect(walkProblem({ ...shape, primaryKey: ['id', 'v'] })).toMatch(/composite primary key/);
  expect(walkProblem({ columns: [{ name: 'id', type: 'binary(16)', nullable: false }], primaryKey: ['id'] })).toMatch(/binary\(16\) primary key/);
  const text = (charset: string) => ({ columns: [{ name: 'id', type: 'int', nullable: false }, { name: 't', type: 'varchar(5)', nullable: true, charset, collation: `${charset}_bin` }], primaryKey: ['id'] });
  expect(shapeMismatch(text('utf8mb4'), text('latin1'))).toBe('column t is latin1/latin1_bin, the source has utf8mb4/utf8mb4_bin (text would be converted)');
  expect(shapeMismatch(shape, shape)).toBeNull();
  expect(shapeMismatch(shape, { ...shape, columns: [shape.columns[0] as never, { name: 'v', type: 'varchar(5)', nullable: true }] })).toBe('column v is varchar(5), the source has int(11)');
  expect(shapeMismatch(shape, { columns: [{ name: 'id', type: 'bigint(20)', nullable: false }, { name: 'v', type: 'int(11)', nullable: false }, { name: 'w', type: 'int', nullable: true }], primaryKey: [] })).toBe(
    'column v is NOT NULL, the source allows NULL; column w is not in the source; primary key is (none), the source\'s is (id)',
  );
});

test('throttle: pause above the limit, abort at the ceiling, pause on a lagging or stopped replica', () => {
  const t = DEFAULT_THROTTLE;
  expect(throttleDecision({ threadsRunning: 25, replicas: [] }, t, 10)).toEqual({ action: 'go' });
  expect(throttleDecision({ threadsRunning: 26, replicas: [] }, t, 10)).toMatchObject({ action: 'pause' });
  expect(throttleDecision({ threadsRunning: 50, replicas: [] }, t, 10)).toMatchObject({ action: 'abort', reason: expect.stringMatching(/abort threshold 50/) });
  expect(throttleDecision({ threadsRunning: 2, replicas: [{ cluster: 'r1', lagSeconds: 11 }] }, t, 10)).toEqual({ action: 'pause', reason: 'replica r1 is 11s behind (limit 10s)' });
  expect(throttleDecision({ threadsRunning: 2, replicas: [{ cluster: 'r1', lagSeconds: null }] }, t, 10)).toMatchObject({ action: 'pause', reason: expect.stringMatching(/not replicating/) });
});

describe('verification by additive checksums', () => {
  const c = (rows: number, sum: number, xor: number): RowChecksum => ({ rows, sum: String(sum), xor: String(xor) });
  const plan = { planned: c(3, 60, 0b111), destBefore: c(10, 1000, 0b1000) };
  test('complete: the destination gained exactly the planned rows', () => {
    expect(verifyArchive(plan, c(13, 1060, 0b1111), c(0, 0, 0), true)).toMatchObject({ ok: true, conserved: true, complete: true });
  });
  test('partial (cancelled): moved + remaining = planned', () => {
    expect(verifyArchive(plan, c(11, 1010, 0b1001), c(2, 50, 0b110), false)).toMatchObject({ ok: true, conserved: true, complete: false });
    expect(verifyArchive(plan, c(11, 1010, 0b1001), c(2, 50, 0b110), true).problems).toEqual(['2 row(s) matching the predicate are still in the source range']);
  });
  test('a duplicated or lost row, or a changed value, is caught', () => {
    expect(verifyArchive(plan, c(14, 1080, 0b1111), c(0, 0, 0), true).problems[0]).toMatch(/planned 3 row\(s\); the destination gained 4/);
    expect(verifyArchive(plan, c(12, 1040, 0b1011), c(0, 0, 0), true).problems[0]).toMatch(/fewer than planned/);
    expect(verifyArchive(plan, c(13, 1061, 0b1111), c(0, 0, 0), true).problems[0]).toMatch(/checksum mismatch/);
  });
});

test('config: named jobs, known clusters, schedules that name a job', () => {
  const yaml = (extra: string) => `
repository: { path: /tmp/r }
clusters:
  - { name: shop, host: db, user: u }
archive:
  jobs:
    - { name: orders-90d, cluster: shop, database: shop, table: orders, where: "created_at < NOW() - INTERVAL 90 DAY", to: orders_history }
${extra}`;
  const ok = parseConfig(yaml('schedules: { entries: [{ cluster: shop, action: archive, job: orders-90d, cron: "30 3 * * *" }] }'), 'x.yaml', '/etc/dbops');
  expect(ok.archive.jobs[0]?.batchSize).toBe(1000);
  const desired = desiredSchedules(ok.schedules, null, { 'orders-90d': ok.archive.jobs[0] });
  expect(desired.map((d) => [d.id, d.job])).toEqual([['dbops/shop/archive/orders-90d', 'orders-90d']]);
  const changed = desiredSchedules(ok.schedules, null, { 'orders-90d': { ...ok.archive.jobs[0], batchSize: 5 } });
  expect(changed[0]?.hash).not.toBe(desired[0]?.hash);
  expect(() => parseConfig(yaml('schedules: { entries: [{ cluster: shop, action: archive, job: nope, cron: "30 3 * * *" }] }'), 'x.yaml', '/etc/dbops')).toThrow(/schedules.entries\[0\].job: unknown archive job "nope"/);
  expect(() => parseConfig(yaml('schedules: { entries: [{ cluster: shop, action: archive, cron: "30 3 * * *" }] }'), 'x.yaml', '/etc/dbops')).toThrow(/schedules.entries\[0\].job: action archive needs job/);
  expect(() =>
    parseConfig(
      `
repository: { path: /tmp/r }
clusters: [{ name: shop, host: db, user: u }]
archive: { jobs: [{ cluster: shop, database: shop, table: o, where: "id < 3", to: "dw:arch.o" }] }`,
      'x.yaml',
      '/etc/dbops',
    ),
  ).toThrow(/archive.jobs\[0\].name: a configured job needs a name[\s\S]*archive.jobs\[0\].to: unknown cluster "dw"/);
});
