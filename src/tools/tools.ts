/** Locating the standard tools we drive (mariadb-dump, mariadbd, zstd, ...). */
import { access, constants } from 'node:fs/promises';
import * as path from 'node:path';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin'];

/** Absolute path of an executable: an absolute name as is, else PATH and the sbin folders. */
export async function findTool(name: string): Promise<string> {
  if (path.isAbsolute(name)) {
    await access(name, constants.X_OK);
    return name;
  }
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(`${name} not found on PATH: run scripts/setup.sh or install it`);
}

/**
 * The environment of every child process: only what the tools need to run (PATH, locale,
 * temp folder, time zone). Never the worker's own environment, which may hold a password
 * that a config's `{ env: VAR }` reference points at.
 */
const CHILD_ENV_KEYS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TMPDIR', 'TZ', 'DBOPS_MYSQL_BIN_DIR'];

export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of CHILD_ENV_KEYS) if (process.env[key] !== undefined) env[key] = process.env[key];
  return { ...env, ...extra };
}

/** The project's folder (where .tools/ lives): the nearest folder above this file with a package.json, from src/ or dist/. */
export function projectRoot(): string {
  const { existsSync } = process.getBuiltinModule('node:fs');
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return process.cwd();
}
