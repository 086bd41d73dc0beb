#!/usr/bin/env node
/**
 * dbops: the operator's command line. Thin by design: it validates input, starts or
 * signals workflows, and reads the repository's catalog. It never talks to MySQL itself.
 * Each command group lives in ./commands; this file wires them into one program and
 * decides how failures look: one line on stderr, exit 2 for a mistake in the command
 * line, 1 for anything else.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load';
import { explainFailure } from './backups';
import { registerAdmin } from './commands/admin';
import { registerApprovals } from './commands/approvals';
import { registerArchive } from './commands/archive';
import { registerBackup, registerStorage } from './commands/backup';
import { registerBinlogs } from './commands/binlogs';
import { registerDrill } from './commands/drill';
import { registerOps } from './commands/ops';
import { registerSchema } from './commands/schema';
import { registerRepo } from './commands/repo';
import { registerRestore } from './commands/restore';
import { registerRetention } from './commands/retention';
import { registerSchedules, registerStatus } from './commands/schedules';
import { exit, UsageError } from './commands/shared';

export { UsageError } from './commands/shared';
export { displayConfig } from './commands/admin';

const AFTER_HELP = `
Quick start:
  dbops dev --demo                                   the embedded stack (sandbox MariaDB + Temporal + worker)
  dbops --config dbops.yaml backup full --cluster shop --wait
  dbops restore plan --cluster shop --database shop --to 2026-11-22T14:03:06Z
  dbops approvals list
  dbops repo verify --wait                           re-read every backup, report what is wrong

Every command takes --config FILE (default: $DBOPS_CONFIG, else ./dbops.yaml) and --json
(one JSON document on stdout). "dbops <command> --help" shows a command's options.`;

export function buildProgram(): Command {
  const program = new Command('dbops')
    .description('durable MySQL / MariaDB operations on Temporal: backups, point-in-time restores, DR drills, archiving, retention')
    .option('--config <file>', 'configuration (default: $DBOPS_CONFIG, else ./dbops.yaml)')
    .option('--json', 'machine-readable output on stdout (one JSON document)')
    .addHelpText('after', AFTER_HELP)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  registerAdmin(program);
  registerBackup(program);
  registerStorage(program);
  registerRestore(program);
  registerApprovals(program);
  registerSchedules(program);
  registerStatus(program);
  registerDrill(program);
  registerArchive(program);
  registerRetention(program);
  registerRepo(program);
  registerOps(program);
  registerSchema(program);
  registerBinlogs(program);
  // Subcommands inherit exitOverride and the output settings only when set before they are
  // added; set them on every command so no path calls process.exit behind our back.
  const visit = (c: Command): void => {
    c.exitOverride().configureOutput({ outputError: () => undefined });
    c.commands.forEach(visit);
  };
  visit(program);
  return program;
}

/** "dbops backup full" for argv ["backup", "full", "--cluster", …]: where --help helps. */
function commandPath(program: Command, argv: string[]): string {
  const names = ['dbops'];
  let current = program;
  for (const arg of argv) {
    const next = current.commands.find((c) => c.name() === arg);
    if (!next) continue;
    names.push(arg);
    current = next;
  }
  return names.join(' ');
}

class CommandLineError extends Error {}

export async function main(argv: string[]): Promise<number> {
  exit.code = 0;
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync') return 2;
    throw new CommandLineError(`${error.message.replace(/^error: /, '')} (${commandPath(program, argv)} --help)`);
  }
  return exit.code;
}

/** One line on stderr, non-zero exit: what went wrong and, where we know, how to fix it. */
export function describeError(error: unknown): string {
  if (error instanceof ConfigError) return `dbops: ${error.issues.length > 0 ? `${error.message.split('\n')[0]} ${error.issues.join('; ')}` : error.message}`;
  if (error instanceof UsageError) return `dbops: ${error.message} (dbops --help)`;
  if (error instanceof CommandLineError) return `dbops: ${error.message.replace(/\s*\n\s*/g, ' ')}`;
  return `dbops: ${explainFailure(error).replace(/\s*\n\s*/g, ' ')}`;
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError || error instanceof CommandLineError ? 2 : 1;
}

/** The process entry (bin/dbops): run, print a failure as one line, set the exit code. */
export function run(argv: string[]): void {
  // `dbops … | head` closes the pipe early: that is not a failure.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(exit.code);
    throw error;
  });
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(describeError(error) + '\n');
      process.exitCode = exitCodeOf(error);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
