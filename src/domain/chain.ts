/**
 * The backup chain: which binary logs an incremental or differential must copy, and when
 * the chain has a gap and the next run must take a full instead. Pure, so that every rule
 * is unit-tested and the workflow can decide deterministically.
 *
 *   full ── incremental ── incremental ── ...        each incremental: since its parent
 *     └──── differential ── incremental ── ...       a differential: everything since the full
 */
import { coverageEnd, type Manifest, type ServerIdentity } from './manifest';

export interface ServerBinlog {
  name: string;
  size: number;
  /** Copied from this timeline of the continuous binlog archive: the server no longer has it. */
  archive?: string;
}

/** Recorded in the catalog when a gap is found; cleared by the next full. */
export interface ChainState {
  brokenAt: string;
  reason: string;
  detectedBy: string;
  lastGoodBackupId: string | null;
}

export type BinlogPlan =
  | { action: 'full'; reason: string }
  | { action: 'gap'; reason: string; lastGoodBackupId: string | null }
  | {
      action: 'copy';
      parentId: string;
      baseFullId: string;
      startFile: string;
      startPosition: number;
      files: ServerBinlog[];
    };

const BINLOG_NAME = /^(.*)\.(\d+)$/;

export function binlogNumber(name: string): { base: string; number: number; width: number } | null {
  const m = BINLOG_NAME.exec(name);
  if (!m?.[1] || m[2] === undefined) return null;
  return { base: m[1], number: Number(m[2]), width: m[2].length };
}

export function nextBinlogName(name: string): string {
  const parsed = binlogNumber(name);
  if (!parsed) throw new Error(`not a binlog file name: ${name}`);
  return `${parsed.base}.${String(parsed.number + 1).padStart(parsed.width, '0')}`;
}

/** Newest routine full: the root of the current chain (emergency fulls are not chain roots). */
export function latestFull(backups: readonly Manifest[]): Manifest | null {
  const fulls = backups.filter((b) => b.type === 'full');
  return fulls.length === 0 ? null : (fulls[fulls.length - 1] as Manifest);
}

export function sameServer(a: ServerIdentity, b: ServerIdentity): string | null {
  if (a.serverUuid && b.serverUuid && a.serverUuid !== b.serverUuid) return `server uuid ${a.serverUuid} became ${b.serverUuid}`;
  if (a.serverId !== b.serverId) return `server id ${a.serverId} became ${b.serverId}`;
  if (a.hostname !== b.hostname) return `host ${a.hostname} became ${b.hostname}`;
  if (a.product !== b.product) return `product ${a.product} became ${b.product}`;
  return null;
}

export interface PlanInput {
  type: 'incremental' | 'differential';
  /** Published backups of the cluster, oldest first. */
  backups: readonly Manifest[];
  chain: ChainState | null;
  server: ServerIdentity;
  /** SHOW BINARY LOGS after FLUSH BINARY LOGS: the last one is the new active file. */
  binlogs: readonly ServerBinlog[];
  /**
   * Closed files the continuous binlog archive holds whole, of one timeline of this same
   * server, in order: they stand in for binlogs the server purged before a backup copied them.
   */
  archived?: { timeline: string; files: ReadonlyArray<{ name: string; size: number }> } | null;
}

export function planBinlogBackup(input: PlanInput): BinlogPlan {
  const base = latestFull(input.backups);
  if (!base || !base.snapshot) return { action: 'full', reason: 'no full backup to build on yet' };
  if (input.chain && input.chain.brokenAt >= base.startedAt) {
    return { action: 'full', reason: `the chain is broken since ${input.chain.brokenAt} (${input.chain.reason}); a new full starts a new chain` };
  }

  // A physical incremental (changed pages) is no binlog parent: the binlog chain goes on past it.
  const members = input.backups.filter((b) => b.baseFullId === base.id && (b.type === 'incremental' || b.type === 'differential') && !b.physical);
  const parent: Manifest = input.type === 'differential' ? base : ((members[members.length - 1] as Manifest | undefined) ?? base);
  const parentEnd = coverageEnd(parent);
  if (!parentEnd) return { action: 'full', reason: `backup ${parent.id} records no binlog position` };

  const changed = sameServer(parent.server, input.server);
  if (changed) return { action: 'gap', reason: `different server identity since ${parent.id}: ${changed}`, lastGoodBackupId: parent.id };

  // Replay continues in the snapshot's file at its position, or in the file after the last copied one.
  const startFile = parent.type === 'full' ? parentEnd.file : nextBinlogName(parentEnd.file);
  const startPosition = parent.type === 'full' ? parentEnd.position : 4;
  const closed = input.binlogs.slice(0, -1);
  const active = input.binlogs[input.binlogs.length - 1];
  const want = binlogNumber(startFile);
  const oldest = input.binlogs[0] ? binlogNumber(input.binlogs[0].name) : null;
  const newest = active ? binlogNumber(active.name) : null;
  if (!want || !oldest || !newest || want.base !== oldest.base) {
    return { action: 'gap', reason: `the server's binary logs (${input.binlogs.map((b) => b.name).join(', ') || 'none'}) do not continue ${parent.id}'s ${parentEnd.file}`, lastGoodBackupId: parent.id };
  }
  if (want.number < oldest.number) {
    const bridge = bridgeFromArchive(input.archived ?? null, want.number, oldest.number);
    if (bridge) {
      const fromServer = closed.filter((b) => (binlogNumber(b.name)?.number ?? -1) >= oldest.number);
      const files = [...bridge, ...fromServer];
      const contiguous = files.every((f, i) => binlogNumber(f.name)?.number === want.number + i);
      if (contiguous && files.length > 0 && (files[0] as ServerBinlog).size >= startPosition) {
        return { action: 'copy', parentId: parent.id, baseFullId: base.id, startFile, startPosition, files };
      }
    }
    return {
      action: 'gap',
      reason: `binary logs were purged before they were copied: ${startFile} is needed after ${parent.id}, the server's oldest is ${input.binlogs[0]?.name}`,
      lastGoodBackupId: parent.id,
    };
  }
  if (want.number > newest.number) {
    return {
      action: 'gap',
      reason: `the binary log position went backwards: ${parent.id} ends in ${parentEnd.file}, the server is now at ${active?.name} (RESET MASTER or a different server?)`,
      lastGoodBackupId: parent.id,
    };
  }
  const files = closed.filter((b) => (binlogNumber(b.name)?.number ?? -1) >= want.number);
  for (let i = 0; i < files.length; i++) {
    if (binlogNumber((files[i] as ServerBinlog).name)?.number !== want.number + i) {
      const missing = `${want.base}.${String(want.number + i).padStart(want.width, '0')}`;
      return { action: 'gap', reason: `binary log ${missing} is missing on the server`, lastGoodBackupId: parent.id };
    }
  }
  const first = files[0];
  if (!first) return { action: 'gap', reason: `nothing to copy after ${parent.id}: the binary logs were not flushed`, lastGoodBackupId: parent.id };
  if (first.size < startPosition) {
    return {
      action: 'gap',
      reason: `the binary log position went backwards: ${first.name} is ${first.size} bytes, ${parent.id} ends at ${startPosition}`,
      lastGoodBackupId: parent.id,
    };
  }
  return { action: 'copy', parentId: parent.id, baseFullId: base.id, startFile, startPosition, files };
}

/** The archived files from `want` up to (not including) `until`, each whole and closed, or null when one is missing. */
function bridgeFromArchive(archived: PlanInput['archived'], want: number, until: number): ServerBinlog[] | null {
  if (!archived) return null;
  const out: ServerBinlog[] = [];
  for (let n = want; n < until; n++) {
    const f = archived.files.find((x) => binlogNumber(x.name)?.number === n);
    if (!f) return null;
    out.push({ name: f.name, size: f.size, archive: archived.timeline });
  }
  return out;
}

/** The backups a restore to the end of `target` needs: full, latest differential before it, then incrementals. */
export function restoreChainFor(backups: readonly Manifest[], target: Manifest): Manifest[] {
  const byId = new Map(backups.map((b) => [b.id, b]));
  const chain: Manifest[] = [];
  let current: Manifest | undefined = target;
  while (current) {
    chain.unshift(current);
    current = current.parentId ? byId.get(current.parentId) : undefined;
  }
  return chain;
}

/**
 * Where a physical incremental continues: the newest physical copy of the newest full's
 * chain (the full itself, or a physical incremental after it) and the LSN it copied up
 * to. Only a MariaDB physical full (mariadb-backup) has incrementals; refused otherwise,
 * saying why.
 */
export function physicalIncrementalBase(backups: readonly Manifest[]): { parentId: string; baseFullId: string; fromLsn: number } | { refusal: string } {
  const full = latestFull(backups);
  if (full?.physical?.format === 'clone-tar') {
    return { refusal: `the newest full (${full.id}) is a MySQL clone, and the clone plugin has no incremental mode: the binlog incrementals (dbops backup incremental) cover the time after it` };
  }
  if (!full?.physical || full.physical.format !== 'xbstream') {
    return { refusal: `the newest full${full ? ` (${full.id})` : ''} is not a MariaDB physical full: a physical incremental copies the pages changed since one (take one with dbops backup full --engine physical)` };
  }
  const members = backups.filter((b) => b.baseFullId === full.id && b.physical);
  const parent = members[members.length - 1] ?? full;
  const fromLsn = parent.physical?.toLsn ?? null;
  if (fromLsn === null) return { refusal: `${parent.id} records no LSN to continue from` };
  return { parentId: parent.id, baseFullId: full.id, fromLsn };
}
