/**
 * Every place in the repository, named once. Nothing else joins repository paths: the
 * catalog, locks, chain state, reports and notification state ask here, and every name that
 * becomes a segment (cluster, backup id, artifact, job, drill, run) is checked first, so a
 * name read back from storage or handed in by a caller cannot point anywhere else.
 *
 *   <cluster>/<type>/index.json                       per-type index (derived from manifests)
 *   <cluster>/<type>/<YYYY-MM-DD>/<id>/manifest.json  a backup: its manifest and artifacts
 *   <cluster>/.staging/<id>/                          work in progress (never listed)
 *   <cluster>/.staging/<id>/.owner.json               the run that fills it
 *   <cluster>/.trash/<id>/                            a deleted backup, on its way out
 *   <cluster>/chain.json                              a recorded gap in the backup chain
 *   <cluster>/.locks/backup/<generation>.json         the cluster's backup lock
 *   <cluster>/drills/<drill id>/report.{json,md}      DR drill reports
 *   <cluster>/archives/<job>/<run>.json               archive run reports
 *   <cluster>/verify/<run>.json                       repository verification reports
 *   <cluster>/query-killer/<YYYY-MM-DD>/<run>.json    slow-query killer runs that matched something
 *   <cluster>/restore-targets/<database>.json         which restore created a database
 *   <cluster>/binlog-archive/status.json              how far the continuous binlog archive is complete
 *   <cluster>/binlog-archive/<timeline>/timeline.json one unbroken stream from one server
 *   <cluster>/binlog-archive/<timeline>/<binlog>/<start>-<end>.json   a published segment (written last)
 *   <cluster>/binlog-archive/<timeline>/<binlog>/<start>-<end>.binlog.zst   its bytes
 *   <cluster>/binlog-archive/<timeline>/<binlog>/closed.json          the whole file, once closed
 *   .notifications.json                               webhook cooldown state
 */
import { BACKUP_ID_PATTERN, ARTIFACT_NAME_PATTERN, type BackupType, BACKUP_TYPES } from '../domain/manifest';
import { CLUSTER_NAME_PATTERN, SQL_IDENTIFIER_PATTERN } from '../domain/identifiers';
import { BINLOG_FILE_PATTERN, segmentStem, TIMELINE_PATTERN } from '../domain/binlogArchive';

function segment(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value) || value.includes('..')) throw new Error(`not a ${what}: ${JSON.stringify(value)}`);
  return value;
}

const cluster = (c: string) => segment(c, CLUSTER_NAME_PATTERN, 'cluster name');
const backupId = (id: string) => segment(id, BACKUP_ID_PATTERN, 'backup id');
const artifact = (name: string) => segment(name, ARTIFACT_NAME_PATTERN, 'artifact name');
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const JOB = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const DRILL = /^drill-\d{8}T\d{6}Z$/;
const RUN_KEY = /^\d{8}T\d{6}Z$/;
/** A killer run: its start and the head of its run id (a manual and a scheduled run may start in the same second). */
const KILL_RUN = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;
/** A name found by listing a folder, to look at it (never '.', '..', a separator or a control character). */
const LISTED_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,255}$/;

export function isBackupType(t: string): t is BackupType {
  return (BACKUP_TYPES as readonly string[]).includes(t);
}

export const layout = {
  cluster,
  clusterDir: (c: string) => cluster(c),
  typeDir: (c: string, type: BackupType) => `${cluster(c)}/${type}`,
  index: (c: string, type: BackupType) => `${cluster(c)}/${type}/index.json`,
  /** A day's folder of a type (as listed). */
  dayDir: (c: string, type: BackupType, day: string) => `${cluster(c)}/${type}/${segment(day, DAY, 'day')}`,
  isDay: (name: string) => DAY.test(name),
  /** Where a backup lives: <cluster>/<type>/<UTC day it started>/<id>. */
  backup: (c: string, type: BackupType, id: string, startedAt: Date) => `${cluster(c)}/${type}/${startedAt.toISOString().slice(0, 10)}/${backupId(id)}`,
  /** A backup folder found by listing (day and id checked). */
  listedBackup: (c: string, type: BackupType, day: string, id: string) => `${cluster(c)}/${type}/${segment(day, DAY, 'day')}/${backupId(id)}`,
  isBackupId: (name: string) => BACKUP_ID_PATTERN.test(name),
  /** Where a backup lives, from its id alone: the type and the UTC day it started are part of the id. */
  backupOfId: (c: string, id: string) => {
    const checked = backupId(id);
    const type = checked.slice(checked.lastIndexOf('-') + 1);
    return `${cluster(c)}/${type}/${checked.slice(0, 4)}-${checked.slice(4, 6)}-${checked.slice(6, 8)}/${checked}`;
  },
  /** An entry found by listing a folder (an object no manifest names, a staging marker), to stat it. */
  listed: (folderKey: string, name: string) => `${folderKey}/${segment(name, LISTED_NAME, 'listed name')}`,
  isListedName: (name: string) => LISTED_NAME.test(name),
  manifest: (backupKey: string) => `${backupKey}/manifest.json`,
  /** The mark of the run filling a folder (staging, or an unpublished backup folder in place). */
  owner: (folderKey: string) => `${folderKey}/.owner.json`,
  artifact: (backupKey: string, name: string) => `${backupKey}/${artifact(name)}`,
  stagingDir: (c: string) => `${cluster(c)}/.staging`,
  staging: (c: string, id: string) => `${cluster(c)}/.staging/${backupId(id)}`,
  trashDir: (c: string) => `${cluster(c)}/.trash`,
  trash: (c: string, id: string) => `${cluster(c)}/.trash/${backupId(id)}`,
  chainState: (c: string) => `${cluster(c)}/chain.json`,
  lockDir: (c: string) => `${cluster(c)}/.locks/backup`,
  lockGeneration: (c: string, generation: number) => `${cluster(c)}/.locks/backup/${String(generation).padStart(12, '0')}.json`,
  lockGenerationOf: (name: string): number | null => {
    const m = /^(\d{12})\.json$/.exec(name);
    return m?.[1] ? Number(m[1]) : null;
  },
  drills: (c: string) => `${cluster(c)}/drills`,
  drillReport: (c: string, drillId: string, kind: 'json' | 'md') => `${cluster(c)}/drills/${segment(drillId, DRILL, 'drill id')}/report.${kind}`,
  isDrillId: (name: string) => DRILL.test(name),
  archiveReport: (c: string, job: string, runKey: string) => `${cluster(c)}/archives/${segment(job, JOB, 'job name')}/${segment(runKey, RUN_KEY, 'run key')}.json`,
  verifyDir: (c: string) => `${cluster(c)}/verify`,
  verifyReport: (c: string, runKey: string) => `${cluster(c)}/verify/${segment(runKey, RUN_KEY, 'run key')}.json`,
  isVerifyReport: (name: string) => RUN_KEY.test(name.replace(/\.json$/, '')) && name.endsWith('.json'),
  killReport: (c: string, runKey: string) => `${cluster(c)}/query-killer/${runKey.slice(0, 4)}-${runKey.slice(4, 6)}-${runKey.slice(6, 8)}/${segment(runKey, KILL_RUN, 'killer run key')}.json`,
  schemaChangeReport: (c: string, runKey: string) => `${cluster(c)}/schema-changes/${runKey.slice(0, 4)}-${runKey.slice(4, 6)}-${runKey.slice(6, 8)}/${segment(runKey, KILL_RUN, 'schema change run key')}.json`,
  restoreClaim: (c: string, database: string) => `${cluster(c)}/restore-targets/${segment(database, SQL_IDENTIFIER_PATTERN, 'database name')}.json`,
  notificationState: () => '.notifications.json',
  archiveDir: (c: string) => `${cluster(c)}/binlog-archive`,
  archiveStatus: (c: string) => `${cluster(c)}/binlog-archive/status.json`,
  isTimeline: (name: string) => TIMELINE_PATTERN.test(name),
  isBinlogFile: (name: string) => BINLOG_FILE_PATTERN.test(name),
  archiveTimelineDir: (c: string, t: string) => `${cluster(c)}/binlog-archive/${segment(t, TIMELINE_PATTERN, 'timeline')}`,
  archiveTimeline: (c: string, t: string) => `${cluster(c)}/binlog-archive/${segment(t, TIMELINE_PATTERN, 'timeline')}/timeline.json`,
  archiveFileDir: (c: string, t: string, file: string) =>
    `${cluster(c)}/binlog-archive/${segment(t, TIMELINE_PATTERN, 'timeline')}/${segment(file, BINLOG_FILE_PATTERN, 'binlog file name')}`,
  archiveFileSummary: (c: string, t: string, file: string) => `${layout.archiveFileDir(c, t, file)}/closed.json`,
  archiveSegment: (c: string, t: string, file: string, start: number, end: number) => `${layout.archiveFileDir(c, t, file)}/${segmentStem(start, end)}.json`,
  archiveSegmentData: (c: string, t: string, file: string, start: number, end: number, extension: string) =>
    `${layout.archiveFileDir(c, t, file)}/${segmentStem(start, end)}.binlog${segment(extension, /^(\.zst|\.gz|)$/, 'extension')}`,
};
