import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError, findCluster, loadConfig, parseConfig } from '../../src/config/load';
import { resolveSecret } from '../../src/config/secrets';

const GOOD = `
temporal: { address: temporal.internal:7233, namespace: ops, taskQueue: dbops }
repository: { path: ./backups }
clusters:
  - name: shop-prod
    host: db1.internal
    user: dbops
    password: { env: SHOP_DB_PASSWORD }
    databases: [shop, billing]
  - name: local
    socket: /run/mysqld/mysqld.sock
    user: dbops
    password: { file: secrets/local.pass }
`;

function issuesOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', '/etc/dbops');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected the config to be refused');
}

describe('configuration', () => {
  test('a good config parses, with defaults and paths resolved against its folder', () => {
    const config = parseConfig(GOOD, 'test.yaml', '/etc/dbops');
    expect(config.repository).toEqual({ path: '/etc/dbops/backups', compression: 'zstd' });
    expect(config.clusters[0]).toMatchObject({ name: 'shop-prod', port: 3306, databases: ['shop', 'billing'] });
    expect(config.clusters[1]!.password).toEqual({ file: '/etc/dbops/secrets/local.pass' });
    expect(config.logging.level).toBe('info');
    expect(findCluster(config, 'local').socket).toBe('/run/mysqld/mysqld.sock');
    expect(() => findCluster(config, 'other')).toThrow('unknown cluster "other": configured clusters are shop-prod, local');
  });

  test('every error names the field path and what was expected', () => {
    const issues = issuesOf(`
repository: { path: /r, compression: lz4 }
clusters:
  - name: shop-prod
    port: 70000
    user: dbops
    password: s3cret
    databases: ["shop; DROP DATABASE x"]
  - name: shop-prod
    host: h
    user: u
    surprise: true
`);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^repository\.compression: .*"zstd"\|"gzip"\|"none"/),
        expect.stringMatching(/^clusters\[0\]\.port: .*<=65535/),
        'clusters[0].password: literal secrets are not accepted: write { env: VARIABLE } or { file: /path/to/secret }',
        expect.stringMatching(/^clusters\[0\]\.databases\[0\]: letters, digits/),
        expect.stringMatching(/^clusters\[1\]: Unrecognized key: "surprise"/),
      ]),
    );
  });

  test('a cluster without host or socket is refused at the host field', () => {
    expect(issuesOf(`repository: { path: /r }\nclusters:\n  - { name: a, user: u }\n`)).toEqual([
      'clusters[0].host: a cluster needs host (with port) or socket',
    ]);
  });

  test('duplicate cluster names, empty files and broken YAML are refused clearly', () => {
    const dup = `repository: { path: /r }\nclusters:\n  - { name: a, host: h, user: u }\n  - { name: a, host: h, user: u }\n`;
    expect(issuesOf(dup)).toEqual(['clusters[1].name: duplicate cluster name "a" (also clusters[0])']);
    expect(issuesOf('')).toEqual(expect.arrayContaining([expect.stringMatching(/^repository: /), expect.stringMatching(/^clusters: /)]));
    expect(() => parseConfig('clusters: [', 'x.yaml', '/')).toThrow(/x\.yaml: not valid YAML/);
  });

  test('a missing config file says how to point at one', () => {
    expect(() => loadConfig('/nonexistent/dbops.yaml')).toThrow(/not found: pass --config FILE or set DBOPS_CONFIG/);
  });

  test('secrets resolve from env or a private file, and a world-readable file is refused', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbops-secret-'));
    const file = path.join(dir, 'p');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    expect(resolveSecret({ file }, 'clusters.x.password')).toBe('from-file');
    chmodSync(file, 0o644);
    expect(() => resolveSecret({ file }, 'clusters.x.password')).toThrow(/readable by other users; chmod 600/);
    process.env.DBOPS_UNIT_SECRET = 'from-env';
    expect(resolveSecret({ env: 'DBOPS_UNIT_SECRET' }, 'f')).toBe('from-env');
    expect(() => resolveSecret({ env: 'DBOPS_UNSET_SECRET' }, 'clusters.x.password')).toThrow(
      'clusters.x.password: environment variable DBOPS_UNSET_SECRET is not set on the worker',
    );
  });
});

test('the commented example config in the repository is valid', () => {
  const config = loadConfig(path.join(__dirname, '..', '..', 'config', 'dbops.example.yaml'));
  expect(config.clusters.map((c) => c.name)).toEqual(['shop-prod']);
  expect(config.clusters[0]!.password).toEqual({ env: 'DBOPS_SHOP_PROD_PASSWORD' });
});

test('refuses what would be a guess or a typo, naming the field', () => {
  const cluster = (extra: string) => `repository: { path: ./b }\nclusters:\n  - name: c\n    user: u\n${extra}`;
  expect(issuesOf(cluster('    host: db1\n    socket: /run/s.sock\n'))).toEqual(['clusters[0].socket: give host (with port) or socket, not both: which one the tools use would be a guess']);
  expect(issuesOf(cluster('    host: db1\n    approvers: { restore-swapp: [alice] }\n'))[0]).toMatch(/^clusters\[0\]\.approvers\.restore-swapp: not an approval action; known: restore-swap, restore-instance, archive-delete, retention-delete, drill-failover, schema-change, \*/);
  expect(issuesOf(cluster('    host: db1\n    allowSelfApproval: [restore-swp]\n'))[0]).toMatch(/^clusters\[0\]\.allowSelfApproval\[0\]/);
  expect(issuesOf('repository: { path: ./b, compression: gzip, compressionLevel: 19 }\nclusters: [{ name: c, host: h, user: u }]\n')).toEqual(['repository.compressionLevel: gzip levels go from 1 to 9']);
  expect(issuesOf('repository: { path: ./b, compression: none, compressionLevel: 3 }\nclusters: [{ name: c, host: h, user: u }]\n')).toEqual(['repository.compressionLevel: compression is none: remove the level']);
  expect(issuesOf('repository: { path: ./b }\nclusters: [{ name: c, host: h, user: u }]\nschedules: { timezone: Mars/Olympus }\n')).toEqual(['schedules.timezone: an IANA time zone such as UTC, Europe/Zurich or Asia/Shanghai']);
  expect(issuesOf('repository: { path: ./b }\nclusters: [{ name: c, host: h, user: u }]\napproval: { timeout: 0s }\n')[0]).toMatch(/^approval\.timeout: more than 0s/);
  expect(issuesOf('repository: { path: ./b }\nclusters: [{ name: c, host: h, user: u }]\napproval: { timeout: 10m, escalateAfter: [15m] }\n')).toEqual(['approval.escalateAfter[0]: escalates after the deadline (timeout 10m)']);
  expect(parseConfig('repository: { path: ./b }\nclusters: [{ name: c, host: h, user: u }]\nschedules: { timezone: Asia/Shanghai }\n', 't.yaml', '/').schedules.timezone).toBe('Asia/Shanghai');
});

