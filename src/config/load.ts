/** Reads, parses and validates the YAML config; resolves relative paths against its folder. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigSchema, formatConfigIssues, type ClusterConfig, type DbopsConfig, type SecretRef } from './schema';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function parseConfig(text: string, source: string, baseDir: string): DbopsConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message : String(error);
    throw new ConfigError(`${source}: not valid YAML: ${detail}`);
  }
  const result = ConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issues = formatConfigIssues(result.error);
    throw new ConfigError(`${source}: invalid configuration:\n  ${issues.join('\n  ')}`, issues);
  }
  const config = result.data;
  const absolute = (ref: SecretRef): SecretRef => ('file' in ref ? { file: path.resolve(baseDir, ref.file) } : ref);
  const absoluteRepo = <R extends { path?: string | undefined; s3?: DbopsConfig['repository']['s3']; encryption?: DbopsConfig['repository']['encryption'] }>(r: R): R => ({
    ...r,
    ...(r.path !== undefined ? { path: path.resolve(baseDir, r.path) } : {}),
    ...(r.s3 ? { s3: { ...r.s3, accessKeyId: absolute(r.s3.accessKeyId), secretAccessKey: absolute(r.s3.secretAccessKey) } } : {}),
    ...(r.encryption ? { encryption: { ...r.encryption, keys: Object.fromEntries(Object.entries(r.encryption.keys).map(([id, ref]) => [id, absolute(ref)])) } } : {}),
  });
  config.repository = absoluteRepo(config.repository);
  config.copies = config.copies.map(absoluteRepo);
  for (const cluster of config.clusters) {
    if (cluster.password) cluster.password = absolute(cluster.password);
    if (cluster.restorePassword) cluster.restorePassword = absolute(cluster.restorePassword);
    if (cluster.opsPassword) cluster.opsPassword = absolute(cluster.opsPassword);
  }
  for (const webhook of config.notifications.webhooks) {
    if (typeof webhook.url !== 'string' && 'file' in webhook.url) webhook.url = { file: path.resolve(baseDir, webhook.url.file) };
  }
  return config;
}

/** --config FILE, else $DBOPS_CONFIG, else ./dbops.yaml */
export function resolveConfigPath(explicit?: string): string {
  return path.resolve(explicit ?? process.env.DBOPS_CONFIG ?? 'dbops.yaml');
}

export function loadConfig(file: string): DbopsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `config file ${file} not found: pass --config FILE or set DBOPS_CONFIG (see config/dbops.example.yaml)`
        : `cannot read config file ${file}: ${(error as Error).message}`,
    );
  }
  return parseConfig(text, file, path.dirname(file));
}

export function findCluster(config: DbopsConfig, name: string): ClusterConfig {
  const cluster = config.clusters.find((c) => c.name === name);
  if (!cluster) {
    const known = config.clusters.map((c) => c.name).join(', ');
    throw new ConfigError(`unknown cluster "${name}": configured clusters are ${known}`);
  }
  return cluster;
}
