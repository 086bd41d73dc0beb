/**
 * The command line's own rules, before any config is read or server reached: mistakes in
 * the command line exit 2 with one line that names the fix; help exits 0.
 */
import { describeError, exitCodeOf, main } from '../../src/client/cli';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string; error: string | null }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(argv);
    return { code, out, err, error: null };
  } catch (error) {
    return { code: exitCodeOf(error), out, err, error: describeError(error) };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

test('a missing required option names it and the command whose --help explains it', async () => {
  const r = await run(['backup', 'full', '--config', '/nonexistent.yaml']);
  expect([r.code, r.error]).toEqual([2, "dbops: required option '--cluster <name>' not specified (dbops backup full --help)"]);
});

test('an unknown command suggests the near one', async () => {
  const r = await run(['bakup', 'full']);
  expect(r.code).toBe(2);
  expect(r.error).toBe('dbops: unknown command \'bakup\' (Did you mean backup?) (dbops --help)');
});

test('a group without its subcommand shows the group help and exits 2; --help exits 0', async () => {
  const group = await run(['restore']);
  expect(group.code).toBe(2);
  expect(group.err).toMatch(/Usage: dbops restore/);
  expect(group.err).toMatch(/pitr/);
  const help = await run(['restore', 'pitr', '--help']);
  expect(help.code).toBe(0);
  expect(help.out).toMatch(/--into <name>/);
  expect(help.out).toMatch(/binlog:FILE:POS/);
});

test('global options work before and after the command', async () => {
  const before = await run(['--config', '/nonexistent.yaml', 'backup', 'list', '--cluster', 'x']);
  const after = await run(['backup', 'list', '--cluster', 'x', '--config', '/nonexistent.yaml', '--json']);
  for (const r of [before, after]) {
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/^dbops: config file \/nonexistent\.yaml not found/);
  }
});

test('restore targets are checked before anything is reached', async () => {
  const both = await run(['restore', 'plan', '--cluster', 'c', '--database', 'd', '--to', 'latest', '--before-matching', 'x', '--config', '/nonexistent.yaml']);
  expect([both.code, both.error]).toEqual([2, 'dbops: give either --to or --before-matching, not both (dbops --help)']);
  const bad = await run(['restore', 'pitr', '--cluster', 'c', '--database', 'd', '--to', 'yesterday', '--into', 'x', '--config', '/nonexistent.yaml']);
  expect(bad.code).toBe(1);
  expect(bad.error).toMatch(/^dbops: .*yesterday/);
});

test('repo verify: a group without its subcommand shows the help; an unknown option names the command', async () => {
  const group = await run(['repo']);
  expect(group.code).toBe(2);
  expect(group.err).toMatch(/verify/);
  const bad = await run(['repo', 'verify', '--clusters', 'x', '--config', '/nonexistent.yaml']);
  expect(bad.code).toBe(2);
  expect(bad.error).toMatch(/unknown option '--clusters'.*\(dbops repo verify --help\)/);
});
