import type { Manifest, ServerIdentity } from '../../src/domain/manifest';
import { ManifestSchema } from '../../src/domain/manifest';
import { majorMinor, parseMariabackupInfo, physicalArtifactName, type PhysicalLayout } from '../../src/domain/physical';
import { planRestore } from '../../src/domain/restorePlan';
import { physicalIncrementalBase, planBinlogBackup } from '../../src/domain/chain';

const INFO = `uuid = cf8a5740-ee57-11f1-a4be-02fc00000001
tool_name = mariadb-backup
server_version = 10.11.19-MariaDB-0+deb12u1-log
binlog_pos = filename 'binlog.000001', position '1199', GTID of the last change '0-1-5'
innodb_from_lsn = 0
innodb_to_lsn = 44404
partial = N
`;

describe('what mariadb-backup reports', () => {
  test('the binlog position, the GTID state and the LSNs are read from xtrabackup_info', () => {
    expect(parseMariabackupInfo(INFO)).toEqual({ position: { file: 'binlog.000001', position: 1199, gtidSet: '0-1-5' }, fromLsn: 0, toLsn: 44404 });
    // Several domains, as the tool writes them.
    const multi = INFO.replace("'0-1-5'", "'0-1-5,1-2-9'");
    expect(parseMariabackupInfo(multi).position?.gtidSet).toBe('0-1-5,1-2-9');
    // No GTIDs yet on the server.
    expect(parseMariabackupInfo(INFO.replace(", GTID of the last change '0-1-5'", '')).position).toEqual({ file: 'binlog.000001', position: 1199, gtidSet: null });
  });

  test('a missing or odd position is none, never a guess (the backup then fails, saying why)', () => {
    expect(parseMariabackupInfo(INFO.replace(/^binlog_pos.*$/m, '')).position).toBeNull();
    expect(parseMariabackupInfo(INFO.replace('binlog.000001', '../etc/passwd')).position).toBeNull();
    expect(parseMariabackupInfo(INFO.replace("position '1199'", "position 'x'")).position).toBeNull();
    // A GTID field that does not read as GTIDs is dropped, the position kept.
    expect(parseMariabackupInfo(INFO.replace("'0-1-5'", "'0-1-5; DROP'")).position?.gtidSet).toBeNull();
    expect(parseMariabackupInfo('innodb_to_lsn = 12a').toLsn).toBeNull();
  });

  test('artifact names and versions', () => {
    expect(physicalArtifactName('xbstream', '.zst')).toBe('backup.xbstream.zst');
    expect(physicalArtifactName('clone-tar', '')).toBe('backup.tar');
    expect(majorMinor('10.11.19-MariaDB-0+deb12u1-log')).toBe('10.11');
    expect(majorMinor('9.7.4-2')).toBe('9.7');
  });
});

const server: ServerIdentity = { product: 'mysql', version: '9.7', serverId: 1, serverUuid: 'u', hostname: 'db', binlogFormat: 'ROW', gtidMode: 'ON' };
const UUID = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
function m(id: string, type: Manifest['type'], at: string, extra: Partial<Manifest> = {}): { manifest: Manifest; relativePath: string } {
  return {
    relativePath: `c/${type}/2026-11-22/${id}`,
    manifest: {
      formatVersion: 1, id, type, encryption: null, cluster: 'c', status: 'verified', retentionClass: 'routine', parentId: null, baseFullId: null,
      startedAt: at, finishedAt: at.replace(':00.000Z', ':30.000Z'), verifiedAt: at, durationMs: 1, server, tool: { name: 't', version: '1' },
      databases: ['shop'], snapshot: null, binlogs: null, tables: [],
      objects: { views: [], routines: 0, triggers: 0, events: 0 },
      artifacts: [{ name: 'dump.sql.zst', compression: 'zstd', size: 10, sha256: 'a'.repeat(64), rawSize: 10, rawSha256: 'b'.repeat(64) }],
      workflow: { workflowId: 'w', runId: 'r' }, requestedBy: null, reason: null, ...extra,
    },
  };
}
const layout = (extra: Partial<PhysicalLayout> = {}): PhysicalLayout => ({ format: 'clone-tar', artifact: 'backup.tar.zst', fromLsn: null, toLsn: null, serverVersion: '9.7.4', until: null, ...extra });
const physicalArtifact = [{ name: 'backup.tar.zst', compression: 'zstd' as const, size: 10, sha256: 'c'.repeat(64), rawSize: 20, rawSha256: 'd'.repeat(64) }];
const binlogs = (files: string[], start: number, last: number) => ({
  startFile: files[0]!, startPosition: start, endFile: files[files.length - 1]!, endPosition: 900, files,
  firstEventTime: null, lastEventTime: null, gtids: [{ source: UUID, first: `${UUID}:11`, last: `${UUID}:${last}` }], transactions: 30,
});
// A logical full at 10:00, a physical one at 12:00 (its copy's own point lies between 3:100 and 3:800), incrementals after each.
const logical = m('L', 'full', '2026-11-22T10:00:00.000Z', { snapshot: { file: 'binlog.000002', position: 100, gtidSet: `${UUID}:1-10` } });
const incL = m('IL', 'incremental', '2026-11-22T11:00:00.000Z', { parentId: 'L', baseFullId: 'L', binlogs: binlogs(['binlog.000002'], 100, 20) });
const incL2 = m('IL2', 'incremental', '2026-11-22T12:30:00.000Z', { parentId: 'IL', baseFullId: 'L', binlogs: binlogs(['binlog.000003'], 4, 45) });
const physical = m('P', 'full', '2026-11-22T12:00:00.000Z', {
  snapshot: { file: 'binlog.000003', position: 100, gtidSet: `${UUID}:1-30` },
  artifacts: physicalArtifact,
  physical: layout({ until: { file: 'binlog.000003', position: 800, gtidSet: `${UUID}:1-40` } }),
});
const incP = m('IP', 'incremental', '2026-11-22T13:00:00.000Z', { parentId: 'P', baseFullId: 'P', binlogs: binlogs(['binlog.000003', 'binlog.000004'], 100, 60) });
const all = [logical, incL, physical, incL2, incP];
const now = new Date('2026-11-22T20:00:00Z');

describe('which full a restore starts from', () => {
  test('on a server of its own (a drill) the newest full at the target, physical or not, and why', () => {
    const out = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'latest' }, backups: all, chainState: null, now, site: 'own-server' });
    if (!out.ok) throw new Error(out.reason);
    expect(out.plan.full).toMatchObject({ id: 'P', artifact: 'backup.tar.zst', physical: { format: 'clone-tar', artifact: 'backup.tar.zst', rawSha256: 'd'.repeat(64), rawSize: 20 } });
    expect(out.plan.why).toMatch(/physical full.*no SQL to load/);
    expect(out.plan.binlogs.map((b) => b.file)).toEqual(['binlog.000003', 'binlog.000004']);
    expect(out.plan.start).toEqual({ file: 'binlog.000003', position: 100, gtidSet: `${UUID}:1-30` });

    // Before the physical full: the logical one, saying why not the physical.
    const earlier = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'time', at: '2026-11-22T11:30:00Z' }, backups: all, chainState: null, now, site: 'own-server' });
    if (!earlier.ok) throw new Error(earlier.reason);
    expect(earlier.plan.full.id).toBe('L');
    expect(earlier.plan.full.physical).toBeUndefined();
    expect(earlier.plan.why).toMatch(/logical full: it is the newest full at or before the target/);
  });

  test('a position between the clone start and its end cannot start from the clone (its copy may be past the target)', () => {
    const inside = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'position', file: 'binlog.000003', position: 500 }, backups: all, chainState: null, now, site: 'own-server' });
    if (!inside.ok) throw new Error(inside.reason);
    expect(inside.plan.full.id).toBe('L');
    const after = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'position', file: 'binlog.000004', position: 50 }, backups: all, chainState: null, now, site: 'own-server' });
    if (!after.ok) throw new Error(after.reason);
    expect(after.plan.full.id).toBe('P');
    // By GTID: the clone's copy may hold up to :40, so a target of :35 starts from the logical full.
    const gtid = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'gtid', gtid: `${UUID}:1-35` }, backups: all, chainState: null, now, site: 'own-server' });
    expect(gtid.ok && gtid.plan.full.id).not.toBe('P');
  });

  test('into a live server only a logical full; with none, refused with the reason and the way out', () => {
    const live = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'latest' }, backups: all, chainState: null, now });
    if (!live.ok) throw new Error(live.reason);
    expect(live.plan.full.id).toBe('L');
    expect(live.plan.why).toMatch(/logical full: the restore goes into a live server/);
    expect(live.plan.chain.map((c) => c.id)).toEqual(['IL', 'IL2']);

    const onlyPhysical = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'latest' }, backups: [physical, incP], chainState: null, now });
    expect(onlyPhysical.ok).toBe(false);
    expect(!onlyPhysical.ok && onlyPhysical.reason).toMatch(/only physical fulls: refused: a physical full restores a whole instance.*dbops drill run.*--engine dump/);
  });

  test('a manifest read back from storage: the physical section is checked like the rest', () => {
    const ok = ManifestSchema.safeParse({ ...physical.manifest, id: '20261122T120000Z-full', physical: layout() });
    expect(ok.success).toBe(true);
    const bad = ManifestSchema.safeParse({ ...physical.manifest, id: '20261122T120000Z-full', physical: layout({ artifact: '../../etc/passwd' }) });
    expect(bad.success).toBe(false);
    const odd = ManifestSchema.safeParse({ ...physical.manifest, id: '20261122T120000Z-full', physical: { ...layout(), format: 'rsync' } });
    expect(odd.success).toBe(false);
  });
});

describe('physical incrementals (MariaDB)', () => {
  const maria: ServerIdentity = { ...server, product: 'mariadb', serverUuid: null, gtidMode: null };
  const xb = (id: string, extra: Partial<PhysicalLayout> = {}) => layout({ format: 'xbstream', artifact: 'backup.xbstream.zst', fromLsn: 0, toLsn: 1000, ...extra });
  const xbArtifact = [{ name: 'backup.xbstream.zst', compression: 'zstd' as const, size: 10, sha256: 'c'.repeat(64), rawSize: 20, rawSha256: 'd'.repeat(64) }];
  const F = m('F', 'full', '2026-11-22T10:00:00.000Z', { server: maria, snapshot: { file: 'binlog.000002', position: 100, gtidSet: '0-1-10' }, artifacts: xbArtifact, physical: xb('F') });
  const B1 = m('B1', 'incremental', '2026-11-22T11:00:00.000Z', { server: maria, parentId: 'F', baseFullId: 'F', binlogs: { ...binlogs(['binlog.000002', 'binlog.000003'], 100, 20), gtids: [] } });
  const P1 = m('P1', 'incremental', '2026-11-22T12:00:00.000Z', { server: maria, parentId: 'F', baseFullId: 'F', snapshot: { file: 'binlog.000004', position: 300, gtidSet: '0-1-30' }, artifacts: xbArtifact, physical: xb('P1', { fromLsn: 1000, toLsn: 2000 }) });
  const B2 = m('B2', 'incremental', '2026-11-22T13:00:00.000Z', { server: maria, parentId: 'B1', baseFullId: 'F', binlogs: { ...binlogs(['binlog.000004', 'binlog.000005'], 4, 40), gtids: [] } });
  const P2 = m('P2', 'incremental', '2026-11-22T14:00:00.000Z', { server: maria, parentId: 'P1', baseFullId: 'F', snapshot: { file: 'binlog.000006', position: 50, gtidSet: '0-1-50' }, artifacts: xbArtifact, physical: xb('P2', { fromLsn: 2000, toLsn: 3000 }) });
  const B3 = m('B3', 'incremental', '2026-11-22T15:00:00.000Z', { server: maria, parentId: 'B2', baseFullId: 'F', binlogs: { ...binlogs(['binlog.000006'], 4, 60), gtids: [] } });
  const chain = [F, B1, P1, B2, P2, B3];

  test('each continues the newest physical copy of the chain from its LSN; a clone or a logical full has none', () => {
    expect(physicalIncrementalBase([F, B1].map((b) => b.manifest))).toEqual({ parentId: 'F', baseFullId: 'F', fromLsn: 1000 });
    expect(physicalIncrementalBase([F, B1, P1, B2].map((b) => b.manifest))).toEqual({ parentId: 'P1', baseFullId: 'F', fromLsn: 2000 });
    expect(physicalIncrementalBase([physical.manifest])).toEqual({ refusal: expect.stringMatching(/MySQL clone.*no incremental mode/) });
    expect(physicalIncrementalBase([logical.manifest])).toEqual({ refusal: expect.stringMatching(/not a MariaDB physical full.*--engine physical/) });
  });

  test('the binlog chain goes on past them: a binlog incremental never takes one as its parent', () => {
    const plan = planBinlogBackup({ type: 'incremental', backups: [F, B1, P1].map((b) => b.manifest), chain: null, server: maria, binlogs: [{ name: 'binlog.000004', size: 900 }, { name: 'binlog.000005', size: 10 }] });
    expect(plan).toMatchObject({ action: 'copy', parentId: 'B1', baseFullId: 'F' });
  });

  test('a restore prepares the ones at or before the target onto the full and replays only the binlogs after the last', () => {
    const latest = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'latest' }, backups: chain, chainState: null, now, site: 'own-server' });
    if (!latest.ok) throw new Error(latest.reason);
    expect(latest.plan.full.physical?.deltas?.map((d) => d.id)).toEqual(['P1', 'P2']);
    expect(latest.plan.start).toEqual({ file: 'binlog.000006', position: 50, gtidSet: '0-1-50' });
    expect(latest.plan.binlogs.map((b) => b.file)).toEqual(['binlog.000006']);

    const between = planRestore({ cluster: 'c', database: 'shop', target: { kind: 'time', at: '2026-11-22T13:30:00Z' }, backups: chain, chainState: null, now, site: 'own-server' });
    if (!between.ok) throw new Error(between.reason);
    expect(between.plan.full.physical?.deltas?.map((d) => d.id)).toEqual(['P1']);
    expect(between.plan.start.file).toBe('binlog.000004');
    expect(between.plan.binlogs.map((b) => b.file)).toEqual(['binlog.000004', 'binlog.000005', 'binlog.000006']);

    // Into a live server none of it: the logical restore has no full here at all.
    expect(planRestore({ cluster: 'c', database: 'shop', target: { kind: 'latest' }, backups: chain, chainState: null, now }).ok).toBe(false);
  });
});
