/** Resolves secret references at the moment of use; values never leave the activity. */
import { readFileSync, statSync } from 'node:fs';
import type { SecretRef } from './schema';
import { ConfigError } from './load';

export function describeSecretRef(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

export function resolveSecret(ref: SecretRef, field: string): string {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === '') {
      throw new ConfigError(`${field}: environment variable ${ref.env} is not set on the worker`);
    }
    return value;
  }
  try {
    const mode = statSync(ref.file).mode & 0o077;
    if (mode & 0o007) {
      throw new ConfigError(`${field}: ${ref.file} is readable by other users; chmod 600 it`);
    }
    return readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${field}: cannot read ${ref.file}: ${(error as Error).message}`);
  }
}
