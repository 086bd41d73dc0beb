/** dbops dev, worker, setup temporal, config check: running the pieces and checking the setup. */
import type { Command } from 'commander';
import { describeRepository, type DbopsConfig } from '../../config/schema';
import { displayWebhookUrl } from '../../domain/notifications';
import { createLogger, type Level } from '../../logging/logger';
import { runWorker } from '../../workers/worker';
import { runDev } from '../dev';
import { registerSearchAttributes } from '../setupTemporal';
import { configOf, io, jsonWanted, UsageError, withClient } from './shared';

/** The configuration as it may be printed: literal webhook URLs (secrets) masked as scheme://host/…. */
export function displayConfig(cfg: DbopsConfig): DbopsConfig {
  return { ...cfg, notifications: { ...cfg.notifications, webhooks: cfg.notifications.webhooks.map((w) => ({ ...w, url: displayWebhookUrl(w.url) })) } };
}

export function registerAdmin(program: Command): void {
  program
    .command('dev')
    .description('the embedded stack in the foreground: Temporal dev server + UI, a sandbox MariaDB with sample data, a worker')
    .option('--product <product>', 'the sandbox server: mariadb, or mysql (MySQL 9.7 from the project\'s chroot; scripts/setup.sh as root)', 'mariadb')
    .option('--s3', 'keep the repository in a private S3 server (S3Proxy) started with the stack, encrypted with a key made once in the state folder')
    .option('--state-dir <dir>', 'where its state lives (default .dbops/dev, .dbops/dev-mysql; with --s3 .dbops/dev-s3, .dbops/dev-mysql-s3)')
    .option('--demo', 'take a full backup and list it once everything is up')
    .option('--exit-after-demo', 'stop after the demo')
    .action(async (options: { product: string; s3?: boolean; stateDir?: string; demo?: boolean; exitAfterDemo?: boolean }) => {
      if (options.product !== 'mariadb' && options.product !== 'mysql') throw new UsageError(`--product must be mariadb or mysql, not ${JSON.stringify(options.product)}`);
      const s3 = options.s3 === true;
      await runDev({
        product: options.product,
        s3,
        // Each mode its own folder: a bucket repository and a folder one never mix their backups.
        stateDir: options.stateDir ?? `.dbops/dev${options.product === 'mysql' ? '-mysql' : ''}${s3 ? '-s3' : ''}`,
        demo: options.demo === true,
        exitAfterDemo: options.exitAfterDemo === true,
        logger: createLogger((process.env.DBOPS_LOG_LEVEL as Level | undefined) ?? 'warn'),
        out: io.out,
      });
    });

  program
    .command('worker')
    .description('run a worker for the configured task queue (until SIGINT/SIGTERM)')
    .action(async (_o: unknown, command: Command) => {
      const cfg = configOf(command);
      await runWorker({ config: cfg, logger: createLogger(cfg.logging.level as Level) });
    });

  program
    .command('setup')
    .description('one-time setup of the Temporal namespace')
    .command('temporal')
    .description('register the search attributes dbops tags its runs with (idempotent)')
    .action(async (_o: unknown, command: Command) => {
      const cfg = configOf(command);
      await withClient(cfg, async (client) => {
        const r = await registerSearchAttributes(client, cfg.temporal.namespace);
        io.out(`search attributes on ${cfg.temporal.namespace}: added ${r.added.join(', ') || 'none'}; already there ${r.present.join(', ') || 'none'}`);
      });
    });

  program
    .command('config')
    .description('the configuration')
    .command('check')
    .description('load and validate the config; every bad field is named with its fix (secrets are not printed)')
    .action((_o: unknown, command: Command) => {
      const cfg = configOf(command);
      io.out(jsonWanted(command) ? JSON.stringify(displayConfig(cfg), null, 2) : `ok: ${cfg.clusters.length} cluster(s): ${cfg.clusters.map((c) => c.name).join(', ')}; repository ${describeRepository(cfg.repository)}`);
    });
}
