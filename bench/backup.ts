/**
 * npm run bench -- backup
 *
 * On the reference dataset (4 million order rows, ~0.5 GB as SQL) and one private MariaDB:
 *   1. the full backup WORKFLOW end to end (inspect, dump, compress, hash, re-verify by
 *      decompressing, publish) against `mariadb-dump --single-transaction … | zstd -T0 -3`;
 *   2. the space saving of the stored full (seed 001: >= 70 %);
 *   3. the incremental backup WORKFLOW over >= 1 GB of binlog against a raw remote copy
 *      with `mariadb-binlog --read-from-remote-server --raw` of the same files.
 * Each pair runs twice, alternating; the best of each side is compared.
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { stringify as toYaml } from 'yaml';
import { startBackup, waitForManifest } from '../src/client/backups';
import { loadConfig } from '../src/config/load';
import { spaceSaving, totalRawBytes, totalStoredBytes, type Manifest } from '../src/domain/manifest';
import { formatBytes } from '../src/domain/naming';
import { createBackupUser } from '../src/sandbox/sampleData';
import { startTemporalDevServer } from '../src/sandbox/temporal';
import { createWorker, installRuntimeLogger } from '../src/workers/worker';
import { BENCH_DIR, benchServer, ensureReferenceDataset, machine, root, sh, timed } from './common';

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const MIN_BINLOG_BYTES = 1.05 * 2 ** 30;

interface Row {
  what: string;
  peer: string;
  peerSeconds: number;
  oursSeconds: number;
  note: string;
}

export async function runBackupBenchmark(): Promise<void> {
  mkdirSync(BENCH_DIR, { recursive: true });
  const logger = pino({ level: 'warn' }, pino.destination(2));
  installRuntimeLogger(logger);
  const server = await benchServer();
  const temporal = await startTemporalDevServer();
  const work = path.join(BENCH_DIR, `run-${Date.now()}`);
  mkdirSync(work, { recursive: true });
  try {
    const conn = await root(server);
    await ensureReferenceDataset(conn, log);
    const password = 'bench-' + Math.random().toString(36).slice(2);
    await createBackupUser(conn, 'dbops', password);
    const passwordFile = path.join(work, 'password');
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    const cnf = path.join(work, 'client.cnf');
    writeFileSync(cnf, `[client]\nuser=dbops\npassword=${password}\nhost=127.0.0.1\nport=${server.port}\nprotocol=TCP\n`, { mode: 0o600 });

    const configFor = (name: string) => {
      const file = path.join(work, `${name}.yaml`);
      writeFileSync(
        file,
        toYaml({
          temporal: { address: temporal.address, namespace: 'default', taskQueue: 'bench' },
          repository: { path: path.join(work, name), compression: 'zstd' },
          clusters: [{ name: 'bench', host: '127.0.0.1', port: server.port, user: 'dbops', password: { file: passwordFile }, databases: ['bench'] }],
        }),
      );
      return loadConfig(file);
    };
    const config = configFor('repo-a');
    const { worker, close } = await createWorker({ config, logger, connection: temporal.nativeConnection });
    const running = worker.run();
    const rows: Row[] = [];
    let tick = 0;
    const backup = async (cfg: typeof config, type: 'full' | 'incremental'): Promise<Manifest> =>
      waitForManifest(await startBackup(temporal.client, cfg, type, { cluster: 'bench', requestedBy: 'bench' }, new Date(Date.now() + ++tick * 1000)));

    try {
      // 1. Full backups.
      const peerFull = path.join(work, 'peer-full.sql.zst');
      const peerDump = () =>
        sh(
          `mariadb-dump --defaults-extra-file=${cnf} --single-transaction --master-data=2 --gtid --routines --events --triggers ` +
            `--hex-blob --quick --databases bench | zstd -T0 -3 -q > ${peerFull}`,
        );
      const fullRuns: Array<{ peer: number; ours: number; manifest: Manifest }> = [];
      for (let i = 0; i < 2; i++) {
        log(`full backup, round ${i + 1}: peer`);
        const p = await timed(peerDump);
        log(`full backup, round ${i + 1}: dbops workflow`);
        const o = await timed(() => backup(config, 'full'));
        fullRuns.push({ peer: p.seconds, ours: o.seconds, manifest: o.value });
        log(`  peer ${p.seconds.toFixed(1)} s, dbops ${o.seconds.toFixed(1)} s`);
      }
      const full = fullRuns[fullRuns.length - 1]!.manifest;
      const peerFullSeconds = Math.min(...fullRuns.map((r) => r.peer));
      const oursFullSeconds = Math.min(...fullRuns.map((r) => r.ours));
      const peerSize = (await import('node:fs')).statSync(peerFull).size;
      rows.push({
        what: `full backup, ${full.tables.reduce((n, t) => n + t.rows, 0).toLocaleString()} rows, ${formatBytes(totalRawBytes(full))} SQL`,
        peer: 'mariadb-dump --single-transaction … | zstd -T0 -3',
        peerSeconds: peerFullSeconds,
        oursSeconds: oursFullSeconds,
        note: `stored ${formatBytes(totalStoredBytes(full))} (peer ${formatBytes(peerSize)}); space saving ${(spaceSaving(full) * 100).toFixed(1)} %; dbops includes re-reading and decompressing the artifact to verify it`,
      });

      // 2. >= 1 GB of binlog after the full: chunked UPDATEs, ROW format, full row images.
      const binlogSince = async (): Promise<Array<{ name: string; size: number }>> => {
        await conn.query('FLUSH BINARY LOGS');
        const [list] = (await conn.query('SHOW BINARY LOGS')) as unknown as [Array<{ Log_name: string; File_size: string }>];
        const all = list.map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
        const from = all.findIndex((f) => f.name === full.snapshot!.file);
        return all.slice(from, -1);
      };
      let files = await binlogSince();
      let pass = 0;
      while (files.reduce((n, f) => n + f.size, 0) < MIN_BINLOG_BYTES) {
        pass += 1;
        log(`writing binlog: update pass ${pass} (${formatBytes(files.reduce((n, f) => n + f.size, 0))} so far)`);
        for (let from = 1; from <= 4_000_000; from += 200_000) {
          await conn.query(
            `UPDATE bench.orders SET status = ELT(1 + (id + ${pass}) % 6, 'new','paid','shipped','delivered','cancelled','refunded'),
                    updated_at = updated_at + INTERVAL 1 MINUTE WHERE id BETWEEN ${from} AND ${from + 199_999}`,
          );
        }
        files = await binlogSince();
      }
      const binlogBytes = files.reduce((n, f) => n + f.size, 0);
      log(`binlog since the full: ${files.length} files, ${formatBytes(binlogBytes)}`);

      // 3. Incrementals: a fresh repository holding the full for each dbops run.
      const incRuns: Array<{ peer: number; ours: number; manifest: Manifest }> = [];
      const fullDir = path.join(config.repository.path, 'bench', 'full');
      for (let i = 0; i < 2; i++) {
        const peerDir = path.join(work, `peer-binlogs-${i}`);
        mkdirSync(peerDir);
        log(`incremental, round ${i + 1}: peer`);
        const p = await timed(() =>
          sh(`mariadb-binlog --defaults-extra-file=${cnf} --read-from-remote-server --raw --result-file=${peerDir}/ ${files.map((f) => f.name).join(' ')}`),
        );
        rmSync(peerDir, { recursive: true, force: true });
        const cfg = configFor(`repo-inc-${i}`);
        mkdirSync(path.join(cfg.repository.path, 'bench'), { recursive: true });
        cpSync(fullDir, path.join(cfg.repository.path, 'bench', 'full'), { recursive: true });
        log(`incremental, round ${i + 1}: dbops workflow`);
        // The worker serves repo-a's config; point it at this repository by running a second worker.
        const second = await createWorker({ config: { ...cfg, temporal: { ...cfg.temporal, taskQueue: `bench-inc-${i}` } }, logger, connection: temporal.nativeConnection });
        const o = await second.worker.runUntil(() =>
          timed(() => backup({ ...cfg, temporal: { ...cfg.temporal, taskQueue: `bench-inc-${i}` } }, 'incremental')),
        );
        await second.close();
        incRuns.push({ peer: p.seconds, ours: o.seconds, manifest: o.value });
        log(`  peer ${p.seconds.toFixed(1)} s, dbops ${o.seconds.toFixed(1)} s`);
      }
      const inc = incRuns[incRuns.length - 1]!.manifest;
      rows.push({
        what: `incremental, ${inc.binlogs!.files.length} binlogs, ${formatBytes(totalRawBytes(inc))}`,
        peer: 'mariadb-binlog --read-from-remote-server --raw (same files)',
        peerSeconds: Math.min(...incRuns.map((r) => r.peer)),
        oursSeconds: Math.min(...incRuns.map((r) => r.ours)),
        note: `stored ${formatBytes(totalStoredBytes(inc))} (${(spaceSaving(inc) * 100).toFixed(1)} % saved; the peer stores raw); dbops includes scanning, zstd, sha256 and re-verification`,
      });

      const out = [
        `Machine: ${machine()}`,
        `Command: npm run bench -- backup   (${new Date().toISOString().slice(0, 10)})`,
        '',
        '| what | peer | peer s | dbops s | dbops / peer | notes |',
        '|---|---|---:|---:|---:|---|',
        ...rows.map((r) => `| ${r.what} | \`${r.peer}\` | ${r.peerSeconds.toFixed(1)} | ${r.oursSeconds.toFixed(1)} | **${(r.oursSeconds / r.peerSeconds).toFixed(2)}** | ${r.note} |`),
        '',
        `All runs (s): full peer/dbops ${fullRuns.map((r) => `${r.peer.toFixed(1)}/${r.ours.toFixed(1)}`).join(', ')}; ` +
          `incremental peer/dbops ${incRuns.map((r) => `${r.peer.toFixed(1)}/${r.ours.toFixed(1)}`).join(', ')}`,
      ];
      process.stdout.write(out.join('\n') + '\n');
    } finally {
      worker.shutdown();
      await running;
      await close();
      await conn.end();
    }
  } finally {
    await temporal.teardown();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
