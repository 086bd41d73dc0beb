/** Fake activities of a backup that succeeds (for workflow tests of backups and of runs that take one first). */
import { FakeActivities, type Fakes } from './workflowEnv';

export const SHA = 'a'.repeat(64);

export function server(binlogFormat: string | null) {
  return { product: 'mariadb', version: '10.11.6-MariaDB', serverId: 11, serverUuid: null, hostname: 'db1', binlogFormat, gtidMode: null };
}

/** A cluster whose activities all succeed: one database, a dump, a publish that returns the draft as verified. */
export function healthyBackup(overrides: Fakes = {}, binlogFormat: string | null = 'ROW'): FakeActivities {
  return new FakeActivities({
    acquireBackupLock: async () => undefined,
    releaseBackupLock: async () => undefined,
    inspectCluster: async () => ({ logBin: true, server: server(binlogFormat), databases: ['shop'], objects: { routines: 1, triggers: 0, events: 0 } }),
    dumpFull: async () => ({
      tool: { name: 'mariadb-dump', version: '10.11.6' },
      facts: {
        binlogFile: 'binlog.000002',
        binlogPosition: 4711,
        gtidSet: '0-11-42',
        databases: ['shop'],
        tables: [{ database: 'shop', table: 'orders', rows: 10 }],
        views: [],
        mariadbSandboxHeader: false,
        completed: true,
      },
      artifact: { name: 'dump.sql.zst', compression: 'zstd', size: 100, sha256: SHA, rawSize: 1000, rawSha256: SHA },
    }),
    publishBackup: async ({ draft }: { draft: Record<string, unknown> }) => ({ ...draft, status: 'verified', verifiedAt: new Date().toISOString() }),
    recordBackupOutcome: async () => undefined,
    discardStaging: async () => undefined,
    // closeChain (before a full) asks for a plan too: nothing to close.
    planBinlogBackup: async () => ({ plan: { action: 'full', reason: 'no full backup yet' }, server: server(binlogFormat) }),
    markChainBroken: async () => undefined,
    ...overrides,
  });
}
