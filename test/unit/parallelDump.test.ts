import { chunkArtifactName, chunkSelect, ChunkSchema, insertHead, planChunks, rangeWhere, renderColumn, tableRows, type ColumnInfo } from '../../src/domain/parallelDump';
import { LoadCheckpointSchema } from '../../src/mysql/parallelLoad';
import { RateLimit } from '../../src/tools/rateLimit';

describe('planChunks', () => {
  test('a table without an integer key, or small enough, is one chunk', () => {
    expect(planChunks({ rows: 10_000_000, key: null }, 1000)).toEqual([null]);
    expect(planChunks({ rows: 900, key: { column: 'id', min: 1n, max: 900n } }, 1000)).toEqual([null]);
  });

  test('ranges cover every key exactly once, open at both ends', () => {
    const ranges = planChunks({ rows: 10_000, key: { column: 'id', min: 1n, max: 10_000n } }, 2500);
    expect(ranges).toEqual([
      { column: 'id', from: null, to: '2501' },
      { column: 'id', from: '2501', to: '5001' },
      { column: 'id', from: '5001', to: '7501' },
      { column: 'id', from: '7501', to: null },
    ]);
    // Every key lands in exactly one range, and so do keys outside [min, max] (written meanwhile elsewhere: never lost).
    for (const k of [-5n, 1n, 2500n, 2501n, 5000n, 7501n, 10_000n, 99_999n]) {
      const hits = ranges.filter((r) => r && (r.from === null || k >= BigInt(r.from)) && (r.to === null || k < BigInt(r.to)));
      expect(hits).toHaveLength(1);
    }
  });

  test('BIGINT UNSIGNED bounds beyond 2^53 stay exact', () => {
    const ranges = planChunks({ rows: 3_000_000, key: { column: 'id', min: 18446744073709551000n, max: 18446744073709551615n } }, 1_000_000);
    expect(ranges.map((r) => r?.to)).toEqual(['18446744073709551206', '18446744073709551412', null]);
  });

  test('the number of chunks is capped', () => {
    expect(planChunks({ rows: 1e12, key: { column: 'id', min: 1n, max: 1_000_000_000_000n } }, 1000)).toHaveLength(10_000);
  });
});

describe('rendering rows on the server', () => {
  const col = (name: string, dataType: string, charset: string | null = null, generated = false): ColumnInfo => ({ name, dataType, charset, generated });

  test('each type class gets its literal form; NULL stays NULL', () => {
    expect(renderColumn(col('n', 'bigint'))).toBe("IF(`n` IS NULL, 'NULL', CAST(`n` AS BINARY))");
    expect(renderColumn(col('f', 'float'))).toContain("'e0'");
    expect(renderColumn(col('b', 'bit'))).toBe("IF(`b` IS NULL, 'NULL', CONCAT('b''', BIN(`b`), ''''))");
    expect(renderColumn(col('g', 'geometry'))).toBe("IF(`g` IS NULL, 'NULL', CONCAT('X''', HEX(`g`), ''''))");
    expect(renderColumn(col('s', 'varchar', 'latin1'))).toBe("IF(`s` IS NULL, 'NULL', QUOTE(CAST(`s` AS BINARY)))");
    expect(renderColumn(col('j', 'json'))).toContain("'_utf8mb4'");
    expect(renderColumn(col('d', 'datetime'))).toBe("IF(`d` IS NULL, 'NULL', CAST(QUOTE(`d`) AS BINARY))");
  });

  test('nothing read from information_schema but the quoted column name reaches the SQL', () => {
    expect(renderColumn(col('s', 'varchar', "x', SLEEP(1), '"))).toBe("IF(`s` IS NULL, 'NULL', QUOTE(CAST(`s` AS BINARY)))");
  });

  test('column names are quoted whatever they hold; generated columns are not written', () => {
    const columns = [col('a`b', 'int'), col('v', 'int', null, true), col('c d', 'varchar', 'utf8mb4')];
    expect(insertHead('t', columns)).toBe('INSERT INTO `t` (`a``b`,`c d`) VALUES ');
    const sql = chunkSelect('db', 't', columns, { column: 'a`b', from: '10', to: null });
    expect(sql).toMatch(/^SELECT CONCAT\('\(', CONCAT_WS\(',', IF\(`a``b` IS NULL/);
    expect(sql).not.toContain('`v`');
    expect(sql).toMatch(/FROM `db`\.`t` WHERE `a``b` >= 10$/);
  });

  test('range bounds are integers or refused', () => {
    expect(rangeWhere(null)).toBe('');
    expect(rangeWhere({ column: 'id', from: null, to: '5' })).toBe(' WHERE `id` < 5');
    expect(() => rangeWhere({ column: 'id', from: '1; DROP TABLE x', to: null })).toThrow();
  });
});

describe('the manifest and the checkpoint are hostile until parsed', () => {
  test('chunk artifact names are ours only', () => {
    expect(chunkArtifactName(1, 22, 333, '.zst')).toBe('chunk-0001-00022-00333.sql.zst');
    const chunk = { database: 'd', table: 't', artifact: chunkArtifactName(0, 0, 0, '.zst'), rows: 1, range: null };
    expect(ChunkSchema.safeParse(chunk).success).toBe(true);
    expect(ChunkSchema.safeParse({ ...chunk, artifact: '../manifest.json' }).success).toBe(false);
  });

  test('a checkpoint can only name indexes in the form SHOW CREATE TABLE writes them', () => {
    const base = { full: 'f', into: 'x', stage: 'load', done: [], prepared: [] };
    expect(LoadCheckpointSchema.safeParse({ ...base, deferred: [{ table: 't', keys: [{ name: 'k', clause: 'KEY `k` (`a`,`b`)' }] }] }).success).toBe(true);
    expect(LoadCheckpointSchema.safeParse({ ...base, deferred: [{ table: 't', keys: [{ name: 'k', clause: 'DROP TABLE `t`' }] }] }).success).toBe(false);
    // A key clause that smuggles a second ALTER specification, or an expression, is refused.
    for (const clause of ['KEY `k` (`a`), DROP COLUMN `b`', 'KEY `k` ((`a` + 1))', "KEY `k` (`a`) COMMENT 'x\\' , DROP COLUMN b -- '"]) {
      expect(LoadCheckpointSchema.safeParse({ ...base, deferred: [{ table: 't', keys: [{ name: 'k', clause }] }] }).success).toBe(false);
    }
    expect(LoadCheckpointSchema.safeParse({ ...base, deferred: [{ table: 't', keys: [{ name: 'k', clause: "UNIQUE KEY `k` (`a`(10) DESC,`b`) USING BTREE COMMENT 'it''s'" }] }] }).success).toBe(true);
  });

  test('table rows add up across chunks', () => {
    const c = (table: string, rows: number) => ({ database: 'd', table, artifact: 'chunk-0000-00000-00000.sql', rows, range: null });
    expect(tableRows([c('a', 2), c('b', 1), c('a', 3)])).toEqual([
      { database: 'd', table: 'a', rows: 5 },
      { database: 'd', table: 'b', rows: 1 },
    ]);
  });
});

describe('RateLimit', () => {
  test('no limit never waits', async () => {
    const slept: number[] = [];
    const limit = new RateLimit(null, () => 0, async (ms) => void slept.push(ms));
    await limit.take(1e12);
    expect(slept).toEqual([]);
  });

  test('holds the byte rate on a fake clock: 5 MB at 1 MB/s take 4 s after the first second of burst', async () => {
    let now = 0;
    const limit = new RateLimit(1_000_000, () => now, async (ms) => void (now += ms));
    for (let i = 0; i < 50; i++) await limit.take(100_000);
    expect(now).toBeGreaterThanOrEqual(4000);
    expect(now).toBeLessThanOrEqual(4100);
  });
});
