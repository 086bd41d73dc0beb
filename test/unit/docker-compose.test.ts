/**
 * Static checks of the Docker Compose stack (docker-compose.yml, Dockerfile,
 * docker/dbops.docker.yaml). Pure: reads and parses files only; no Docker, no network.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dict(value: unknown, what: string): Dict {
  if (!isDict(value)) throw new Error(`${what}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function list(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error(`expected a list, got ${JSON.stringify(value)}`);
  return value;
}

const compose = dict(parse(read('docker-compose.yml')), 'docker-compose.yml');
const services = dict(compose.services, 'services');
const service = (name: string): Dict => dict(services[name], `services.${name}`);

/** `command` as one string (list or string form). */
function commandOf(svc: Dict): string {
  const cmd = svc.command;
  return Array.isArray(cmd) ? cmd.map(String).join(' ') : String(cmd ?? '');
}

/** Published ports as { host, container } (short "ip:host:container" strings and long form). */
function portsOf(svc: Dict): Array<{ host: string; container: string }> {
  return list(svc.ports).map((port) => {
    if (isDict(port)) return { host: String(port.published ?? ''), container: String(port.target ?? '') };
    const spec = String(port).replace(/\/(tcp|udp)$/, '');
    const parts = spec.split(':');
    const container = parts[parts.length - 1] ?? '';
    const host = parts.length >= 2 ? (parts[parts.length - 2] ?? '') : '';
    return { host, container };
  });
}

/** Volume mounts as { source, target, type } (short "src:dst[:mode]" strings and long form). */
function mountsOf(svc: Dict): Array<{ source: string; target: string; type: 'volume' | 'bind' | 'other' }> {
  return list(svc.volumes).map((mount) => {
    if (isDict(mount)) {
      const type = mount.type === 'volume' ? 'volume' : mount.type === 'bind' ? 'bind' : 'other';
      return { source: String(mount.source ?? ''), target: String(mount.target ?? ''), type };
    }
    const [source = '', target = ''] = String(mount).split(':');
    if (target === '') return { source: '', target: source, type: 'volume' }; // anonymous
    const bind = /^[./~]/.test(source) || source.includes('/');
    return { source, target, type: bind ? 'bind' : 'volume' };
  });
}

/** Environment as key/value pairs (mapping and "KEY=value" list forms). */
function environmentOf(svc: Dict): Array<[string, unknown]> {
  const env = svc.environment;
  if (isDict(env)) return Object.entries(env);
  return list(env).map((entry) => {
    const text = String(entry);
    const eq = text.indexOf('=');
    return eq < 0 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)];
  });
}

/** Secret names a service refers to (short and long form). */
function secretsOf(svc: Dict): string[] {
  return list(svc.secrets).map((s) => (isDict(s) ? String(s.source) : String(s)));
}

/** The services a service depends on, with their condition (short list form: service_started). */
function dependenciesOf(svc: Dict): Record<string, string> {
  const dependsOn = svc.depends_on;
  if (isDict(dependsOn)) return Object.fromEntries(Object.entries(dependsOn).map(([name, d]) => [name, String(dict(d, `depends_on.${name}`).condition ?? 'service_started')]));
  return Object.fromEntries(list(dependsOn).map((name) => [String(name), 'service_started']));
}

/** The compose secret a `/run/secrets/<name>` path is, or null for any other path. */
function secretNameOf(file: string): string | null {
  const m = /^\/run\/secrets\/([^/]+)$/.exec(file);
  return m ? m[1]! : null;
}

const workerConfig = () => parseConfig(read('docker/dbops.docker.yaml'), 'docker/dbops.docker.yaml', '/etc/dbops');

describe('docker-compose.yml', () => {
  it('defines the mysql, temporal, s3 and worker services', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['mysql', 'temporal', 's3', 'worker']));
  });

  it('runs S3Proxy 4.1.0 over a folder in a named volume, with its credentials from secret files and the bucket made before it starts', () => {
    const s3 = service('s3');
    expect(s3.image).toBe('andrewgaul/s3proxy:4.1.0');
    const env = Object.fromEntries(environmentOf(s3));
    expect(env.JCLOUDS_PROVIDER).toBe('filesystem-nio2');
    const data = mountsOf(s3).find((m) => m.target === env.JCLOUDS_FILESYSTEM_BASEDIR);
    expect(data?.type).toBe('volume');
    expect(data?.source).not.toBe('');
    expect(env.S3PROXY_AUTHORIZATION).toBe('aws-v2-or-v4');
    // Credentials only as files (the image reads S3PROXY_<NAME>_FILE), from secrets it mounts.
    expect(env).not.toHaveProperty('S3PROXY_IDENTITY');
    expect(env).not.toHaveProperty('S3PROXY_CREDENTIAL');
    for (const key of ['S3PROXY_IDENTITY_FILE', 'S3PROXY_CREDENTIAL_FILE']) {
      const secret = secretNameOf(String(env[key]));
      expect(secret).not.toBeNull();
      expect(secretsOf(s3)).toContain(secret);
    }
    // S3Proxy refuses writes to a bucket nobody created: the worker's bucket is made, then the image's script runs.
    const bucket = workerConfig().repository.s3?.bucket;
    const entrypoint = list(s3.entrypoint).map(String);
    expect(entrypoint.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(entrypoint[2]).toBe(`mkdir -p ${String(env.JCLOUDS_FILESYSTEM_BASEDIR)}/${bucket} && exec /opt/s3proxy/run-docker-container.sh`);
    // Healthy once /healthz answers on the port it listens on; not published on the host.
    const port = new URL(String(env.S3PROXY_ENDPOINT)).port;
    expect(JSON.stringify(dict(s3.healthcheck, 'healthcheck').test)).toContain(`/dev/tcp/127.0.0.1/${port}`);
    expect(JSON.stringify(dict(s3.healthcheck, 'healthcheck').test)).toContain('GET /healthz');
    expect(portsOf(s3)).toEqual([]);
  });

  it('runs MySQL 8.4 with the binary log and GTIDs on', () => {
    const mysql = service('mysql');
    expect(String(mysql.image)).toMatch(/^mysql:8\.4/);
    const cmd = commandOf(mysql);
    expect(cmd).toMatch(/--log-bin(=|\s|$)/);
    expect(cmd).toMatch(/--gtid-mode=ON\b/);
    expect(cmd).toMatch(/--enforce-gtid-consistency=ON\b/);
    expect(cmd).toMatch(/--binlog-format=ROW\b/);
    expect(cmd).toMatch(/--server-id=\d+/);
    expect(mysql.healthcheck).toBeDefined();
  });

  it('creates the dbops user from a secret on first start', () => {
    const mysql = service('mysql');
    const init = mountsOf(mysql).find((m) => m.target === '/docker-entrypoint-initdb.d');
    expect(init?.source).toBe('./docker/mysql-init');
    expect(secretsOf(mysql)).toContain('dbops_mysql_password');
    const script = read('docker/mysql-init/01-dbops-user.sh');
    expect(script).toContain('/run/secrets/dbops_mysql_password');
    for (const privilege of [
      'SELECT',
      'SHOW VIEW',
      'TRIGGER',
      'EVENT',
      'LOCK TABLES',
      'RELOAD',
      'PROCESS',
      'REPLICATION CLIENT',
      'REPLICATION SLAVE',
      'BACKUP_ADMIN',
    ]) {
      expect(script).toContain(privilege);
    }
    expect(script).not.toMatch(/GRANT\s+ALL/i);
  });

  it('runs the Temporal dev server with the dbops search attributes', () => {
    const cmd = commandOf(service('temporal'));
    expect(cmd).toMatch(/server start-dev/);
    expect(cmd).toMatch(/--ip 0\.0\.0\.0/);
    for (const attribute of [
      'DbopsCluster=Keyword',
      'DbopsOperation=Keyword',
      'DbopsBackupType=Keyword',
      'DbopsAwaitingApproval=Bool',
    ]) {
      expect(cmd).toContain(`--search-attribute ${attribute}`);
    }
  });

  it('monitors the worker: Prometheus scrapes its /metrics with the dbops rules, Grafana has the dashboard', () => {
    const prometheus = service('prometheus');
    const mounts = mountsOf(prometheus).map((m) => `${m.source}:${m.target}`);
    expect(mounts).toContain('./monitoring/prometheus/dbops-rules.yml:/etc/prometheus/rules/dbops-rules.yml');
    const scrape = parse(read('docker/prometheus/prometheus.yml')) as { rule_files: string[]; scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
    expect(scrape.rule_files).toContain('/etc/prometheus/rules/dbops-rules.yml');
    const listen = parseConfig(read('docker/dbops.docker.yaml'), path.join(ROOT, 'docker', 'dbops.docker.yaml'), path.join(ROOT, 'docker')).metrics?.listen;
    expect(listen).toBe('0.0.0.0:9464');
    expect(scrape.scrape_configs[0]?.static_configs[0]?.targets).toEqual(['worker:9464']);
    const grafana = mountsOf(service('grafana')).map((m) => `${m.source}:${m.target}`);
    expect(grafana).toContain('./monitoring/grafana/dbops-dashboard.json:/var/lib/grafana/dashboards/dbops-dashboard.json');
    const provider = parse(read('docker/grafana/provisioning/dashboards/dbops.yml')) as { providers: Array<{ options: { path: string } }> };
    expect(provider.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
  });

  it('publishes 3306, 7233 and 8233', () => {
    const published = Object.values(services).flatMap((svc) => portsOf(dict(svc, 'service')));
    for (const port of ['3306', '7233', '8233']) {
      expect(published).toContainEqual({ host: port, container: port });
    }
  });

  it('builds the worker from . and mounts its config; the repository is the bucket, not a local volume', () => {
    const worker = service('worker');
    const build = worker.build;
    const context = isDict(build) ? build.context : build;
    expect(context).toBe('.');
    const mounts = mountsOf(worker);
    expect(mounts).toEqual([{ source: './docker/dbops.docker.yaml', target: '/etc/dbops/dbops.yaml', type: 'bind' }]);
    expect(Object.fromEntries(environmentOf(worker)).DBOPS_CONFIG).toBe('/etc/dbops/dbops.yaml');
    expect(secretsOf(worker)).toEqual(expect.arrayContaining(['dbops_mysql_password', 's3_access_key_id', 's3_secret_access_key', 'dbops_repository_key']));
    expect(dependenciesOf(worker)).toEqual(expect.objectContaining({ mysql: 'service_healthy', temporal: 'service_healthy', s3: 'service_healthy' }));
  });

  it('declares every named volume it uses', () => {
    const declared = Object.keys(dict(compose.volumes ?? {}, 'volumes'));
    const used = Object.values(services).flatMap((svc) =>
      mountsOf(dict(svc, 'service'))
        .filter((m) => m.type === 'volume' && m.source !== '')
        .map((m) => m.source),
    );
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(declared).toContain(name);
  });

  it('declares every secret it uses, as files under ./docker/secrets/', () => {
    const declared = dict(compose.secrets ?? {}, 'secrets');
    const used = Object.values(services).flatMap((svc) => secretsOf(dict(svc, 'service')));
    expect(used).toEqual(expect.arrayContaining(['mysql_root_password', 'dbops_mysql_password', 's3_access_key_id', 's3_secret_access_key', 'dbops_repository_key']));
    for (const name of used) {
      expect(Object.keys(declared)).toContain(name);
      expect(String(dict(declared[name], `secrets.${name}`).file)).toMatch(/^\.\/docker\/secrets\/[^/]+$/);
    }
    const ignore = read('docker/secrets/.gitignore');
    expect(ignore).toMatch(/^\*$/m);
    expect(existsSync(path.join(ROOT, 'docker/secrets/README.md'))).toBe(true);
  });

  it('sets no literal password, credential or key in any environment (only *_FILE references to secrets)', () => {
    const secretish = /(PASSWORD|CREDENTIAL|IDENTITY|SECRET|SECRET_ACCESS_KEY|ACCESS_KEY_ID|_KEY)$/i;
    for (const [name, svc] of Object.entries(services)) {
      for (const [key, value] of environmentOf(dict(svc, name))) {
        expect({ service: name, key, set: secretish.test(key) }).toEqual({ service: name, key, set: false });
        if (secretish.test(key.replace(/_FILE$/i, ''))) expect({ service: name, key, value: String(value) }).toEqual({ service: name, key, value: expect.stringMatching(/^\/run\/secrets\//) });
      }
    }
    const mysqlEnv = Object.fromEntries(environmentOf(service('mysql')));
    expect(mysqlEnv.MYSQL_ROOT_PASSWORD_FILE).toBe('/run/secrets/mysql_root_password');
  });
});

describe('Dockerfile', () => {
  const file = path.join(ROOT, 'Dockerfile');

  it('exists and its ENTRYPOINT runs dist/src/client/cli.js', () => {
    expect(existsSync(file)).toBe(true);
    const text = readFileSync(file, 'utf8');
    const entrypoints = text.split('\n').filter((line) => /^ENTRYPOINT\s/.test(line));
    expect(entrypoints.length).toBeGreaterThan(0);
    const last = entrypoints[entrypoints.length - 1] ?? '';
    expect(JSON.parse(last.replace(/^ENTRYPOINT\s+/, ''))).toEqual(['node', 'dist/src/client/cli.js']);
    expect(text).toMatch(/^CMD \["worker"\]$/m);
    expect(text).toMatch(/^USER (?!root\b|0\b)\S+/m);
    expect(text).toMatch(/npx tsc -p tsconfig\.json/);
  });

  it('carries a mysqld for DR drills of the compose MySQL, where drills look for it', () => {
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/mysqld --version/);
    expect(text).toMatch(/DBOPS_MYSQL_BIN_DIR=\/opt\/dbops\/mysql-bin/);
    for (const tool of ['mysqld', 'mysql', 'mysqldump', 'mysqlbinlog']) expect(text).toContain(tool);
  });

  it('keeps secrets and local build output out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim());
    for (const entry of ['node_modules', 'dist', '.tools', '.dbops', '.git', 'docker/secrets']) {
      expect(ignored).toContain(entry);
    }
  });
});

describe('docker/dbops.docker.yaml', () => {
  it('is a valid dbops config for the compose stack', () => {
    const config = parseConfig(read('docker/dbops.docker.yaml'), 'docker/dbops.docker.yaml', '/etc/dbops');
    expect(config.temporal).toEqual({ address: 'temporal:7233', namespace: 'default', taskQueue: 'dbops' });
    expect(config.repository.path).toBeUndefined();
    const cluster = config.clusters.find((c) => c.name === 'docker-mysql');
    expect(cluster).toBeDefined();
    expect(cluster?.host).toBe('mysql');
    expect(cluster?.port).toBe(3306);
    expect(cluster?.user).toBe('dbops');
    expect(cluster?.product).toBe('mysql');
    expect(cluster?.password).toEqual({ file: '/run/secrets/dbops_mysql_password' });
    expect(cluster?.tools).toEqual({ dump: 'mysqldump', client: 'mysql', binlog: 'mysqlbinlog' });
  });

  it('keeps the repository in the s3 service, on the compose network, sealed with a key from a secret', () => {
    const repository = workerConfig().repository;
    const s3 = repository.s3!;
    expect(s3).toBeDefined();
    // The service's name and the port it listens on, as seen from the worker.
    const listen = new URL(String(Object.fromEntries(environmentOf(service('s3'))).S3PROXY_ENDPOINT));
    const endpoint = new URL(s3.endpoint!);
    expect(endpoint.hostname).toBe('s3');
    expect(endpoint.port).toBe(listen.port);
    expect(s3.pathStyle).toBe(true);
    // Credentials: the same secrets the server reads, mounted into the worker.
    const serverEnv = Object.fromEntries(environmentOf(service('s3')));
    const secretOf = (ref: { env: string } | { file: string }) => ('file' in ref ? secretNameOf(ref.file) : null);
    expect(secretOf(s3.accessKeyId)).toBe(secretNameOf(String(serverEnv.S3PROXY_IDENTITY_FILE)));
    expect(secretOf(s3.secretAccessKey)).toBe(secretNameOf(String(serverEnv.S3PROXY_CREDENTIAL_FILE)));
    const encryption = repository.encryption!;
    expect(encryption).toBeDefined();
    const refs = [s3.accessKeyId, s3.secretAccessKey, ...Object.values(encryption.keys)];
    for (const ref of refs) expect(secretsOf(service('worker'))).toContain(secretOf(ref));
    expect(secretOf(encryption.keys[encryption.current]!)).toBe('dbops_repository_key');
  });

  it('points the password at the secret the worker mounts', () => {
    const config = parseConfig(read('docker/dbops.docker.yaml'), 'docker/dbops.docker.yaml', '/etc/dbops');
    const cluster = config.clusters.find((c) => c.name === 'docker-mysql');
    const ref = cluster?.password;
    expect(ref !== undefined && 'file' in ref).toBe(true);
    const secretName = ref !== undefined && 'file' in ref ? path.posix.basename(ref.file) : '';
    expect(secretsOf(service('worker'))).toContain(secretName);
  });
});
