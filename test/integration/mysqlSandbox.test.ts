/**
 * The MySQL sandbox (src/sandbox/mysql.ts): a real MySQL 9.7 from the chroot scripts/setup.sh
 * builds. Proves that the chrooted tools see the host's paths: a 0600 defaults file in
 * os.tmpdir() for mysqldump, a result folder for mysqlbinlog --raw. Skipped (with a note)
 * where the chroot is not installed (not root, or DBOPS_SKIP_MYSQL=1).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { mysqlAvailable, mysqlToolPath, startMysqlSandbox, type MysqlSandbox } from '../../src/mysql/servers/mysql';
import { processAlive } from '../../src/mysql/servers/local';

const available = mysqlAvailable();
if (!available) console.warn('MySQL chroot not installed (run scripts/setup.sh as root): skipping the MySQL sandbox test');
const withMysql = available ? test : test.skip;

let dir = '';
let sandbox: MysqlSandbox | undefined;

afterAll(async () => {
  await sandbox?.stop();
  if (dir && !process.env.DBOPS_KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
});

withMysql('a private MySQL 9.7: SQL, mysqldump over TCP with a defaults file, mysqlbinlog --raw, stop', async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dbops-mysql-'));
  const server = await startMysqlSandbox({ baseDir: path.join(dir, 'server'), serverId: 21 });
  sandbox = server;
  // The wrappers exec down to mysqld: the pid we hold is the server's, as its pid file says.
  expect(readFileSync(path.join(server.baseDir, 'mysqld.pid'), 'utf8').trim()).toBe(String(server.pid));
  expect(readFileSync(`/proc/${server.pid}/comm`, 'utf8').trim()).toBe('mysqld');

  const root = await createConnection({ host: server.host, port: server.port, user: 'root', multipleStatements: true });
  const [[version]] = await root.query<RowDataPacket[]>('SELECT VERSION() AS v, @@gtid_mode AS g, @@binlog_format AS f, @@server_id AS s');
  expect(version).toEqual({ v: expect.stringMatching(/^9\.7\./), g: 'ON', f: 'ROW', s: 21 });
  const password = 'pw-' + Math.random().toString(36).slice(2);
  await root.query(`
    CREATE DATABASE sbx;
    CREATE TABLE sbx.t (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB;
    INSERT INTO sbx.t VALUES (1, 'Zürich'), (2, 'Genève');
    CREATE USER dumper@'127.0.0.1' IDENTIFIED BY '${password}';
    GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, RELOAD, PROCESS, REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO dumper@'127.0.0.1';`);
  await root.end();

  // Host-made files, read by the chrooted client: same path inside.
  const defaults = path.join(tmpdir(), `dbops-mysql-${process.pid}.cnf`);
  writeFileSync(defaults, `[client]\nuser=dumper\npassword=${password}\nhost=127.0.0.1\nport=${server.port}\nprotocol=TCP\n`, { mode: 0o600 });
  try {
    expect(statSync(defaults).mode & 0o777).toBe(0o600);
    const dump = spawnSync(
      mysqlToolPath('mysqldump'),
      [`--defaults-extra-file=${defaults}`, '--single-transaction', '--source-data=2', '--set-gtid-purged=OFF', '--databases', 'sbx'],
      { encoding: 'utf8' },
    );
    expect(dump.stderr).toBe('');
    expect(dump.status).toBe(0);
    expect(dump.stdout).toMatch(/^-- MySQL dump .*Distrib 9\.7\./m);
    expect(dump.stdout).toContain('CREATE TABLE `t`');
    expect(dump.stdout).toContain("INSERT INTO `t` VALUES (1,'Zürich'),(2,'Genève');");
    expect(dump.stdout).toMatch(/^-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog\.000\d+', SOURCE_LOG_POS=\d+;/m);

    const binlogs = path.join(dir, 'binlogs');
    mkdirSync(binlogs);
    const copy = spawnSync(
      mysqlToolPath('mysqlbinlog'),
      [`--defaults-extra-file=${defaults}`, '--read-from-remote-server', '--raw', `--result-file=${binlogs}/`, 'binlog.000001'],
      { encoding: 'utf8' },
    );
    expect(copy.stderr).toBe('');
    expect(copy.status).toBe(0);
    const raw = readFileSync(path.join(binlogs, 'binlog.000001'));
    expect(raw.subarray(0, 4)).toEqual(Buffer.from([0xfe, 0x62, 0x69, 0x6e])); // \xfebin
    expect(raw.includes(Buffer.from('Zürich'))).toBe(true); // the row event of the INSERT
  } finally {
    rmSync(defaults, { force: true });
  }

  await server.stop();
  sandbox = undefined;
  expect(processAlive(server.pid)).toBe(false);
});
