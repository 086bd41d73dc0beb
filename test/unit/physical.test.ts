import type { Manifest, ServerIdentity } from '../../src/domain/manifest';
import { ManifestSchema } from '../../src/domain/manifest';
import { majorMinor, parseMariabackupInfo, physicalArtifactName, type PhysicalLayout } from '../../src/domain/physical';
import { planRestore } from '../../src/domain/restorePlan';

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
