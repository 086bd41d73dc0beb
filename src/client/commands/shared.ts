/**
 * What every command group shares: the global options (--config, --json), the config and a
 * Temporal client made from them, the operator's name, and how output and errors look
 * (one JSON document on stdout with --json; one line on stderr on failure).
 */
import type { Command } from 'commander';
import { ConfigError, loadConfig, resolveConfigPath } from '../../config/load';
import type { DbopsConfig } from '../../config/schema';
import { connectClient } from '../backups';
import type { Client } from '@temporalio/client';

/** A mistake in how the command was written: exit code 2 and a pointer to --help. */
export class UsageError extends Error {}

export interface Io {
  out: (line: string) => void;
  /** Warnings that must not mix with output a script parses. */
  err: (line: string) => void;
}

export const io: Io = { out: (line) => process.stdout.write(line + '\n'), err: (line) => process.stderr.write(line + '\n') };

/** Options every command accepts, before or after the command's name. */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

export function configOf(command: Command): DbopsConfig {
  return loadConfig(resolveConfigPath(globals(command).config));
}

export function jsonWanted(command: Command): boolean {
  return globals(command).json === true;
}

/** Who runs the command: --as NAME, else the OS user. */
export function operatorOf(options: { as?: string }): string {
  return options.as ?? process.env.USER ?? 'cli';
}

export function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

export function knownCluster(config: DbopsConfig, cluster: string): string {
  if (!config.clusters.some((c) => c.name === cluster)) {
    throw new ConfigError(`unknown cluster "${cluster}": configured clusters are ${config.clusters.map((c) => c.name).join(', ')}`);
  }
  return cluster;
}

/** Runs fn with a Temporal client for the command's config, closed afterwards. */
export async function withClient<T>(config: DbopsConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, close } = await connectClient(config);
  try {
    return await fn(client);
  } finally {
    await close();
  }
}

/** The exit code of an action: set by the action, read by main(). */
export const exit = { code: 0 };
