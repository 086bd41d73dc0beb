/**
 * The binlog copy's in-line test, without a server: a stand-in for mysqlbinlog writes a
 * binlog-shaped file into the FIFO, the real zstd compresses and tests it, and a `zstd`
 * wrapper first on PATH can make the tester lose its input, read slowly, or see a damaged
 * stream. What is checked: a copy passes only when zstd -t read every stored byte; when
 * its input breaks the error says so instead of blaming the data; the tester sets the
 * pace, so nothing is stored (or held in memory) ahead of it; a failing store ends the
 * copy instead of leaving it waiting on the tester.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { ClusterSchema } from '../../src/config/schema';
import { copyBinlogFiles, type CopiedBinlog } from '../../src/mysql/binlogCopy';
import { LocalStorage, type Storage } from '../../src/repository/storage';

const work = mkdtempSync(path.join(tmpdir(), 'dbops-binlogcopy-'));
const realZstd = execFileSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).trim();
const originalPath = process.env.PATH ?? '';

afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  process.env.PATH = originalPath;
});

/** A binlog the scanner accepts: the magic, then events whose headers chain to the end. */
function binlog(file: string, bytes: number, body: (n: number) => Buffer): number {
  const parts: Buffer[] = [Buffer.from([0xfe, 0x62, 0x69, 0x6e])];
  let pos = 4;
  for (let i = 0; pos < bytes; i++) {
    const len = 19 + 4000 + (i % 5) * 1000;
    const header = Buffer.alloc(19);
    header.writeUInt32LE(1_700_000_000 + i, 0);
    header[4] = 30; // a rows event: the scanner walks past it
    header.writeUInt32LE(1, 5);
    header.writeUInt32LE(len, 9);
    header.writeUInt32LE(pos + len, 13);
    parts.push(header, body(len - 19));
    pos += len;
  }
  writeFileSync(file, Buffer.concat(parts));
  return pos;
}

/** Bytes that compress to about half, as row images do. */
let seed = 1;
function compressible(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = 0x41 + ((seed >>> 16) % 16);
  }
  return out;
}

let counter = 0;
function script(name: string, text: string): string {
  const dir = path.join(work, `bin-${++counter}`);
  mkdirSync(dir);
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${text}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** Stands in for `mysqlbinlog --raw --result-file=DIR/ NAME`: writes `source` into DIR/NAME (the FIFO), once `gate` exists. */
function binlogTool(source: string, gate?: string): string {
  return script(
    'fake-binlog',
    [
      'for a in "$@"; do case "$a" in --result-file=*) dir="${a#--result-file=}";; esac; name="$a"; done',
      gate ? `while [ ! -e '${gate}' ]; do sleep 0.05; done` : '',
      `exec cat '${source}' > "$dir$name"`,
    ].join('\n'),
  );
}

/** A `zstd` first on PATH: `tester` runs for `zstd -q -t`, `compressor` for the rest; both default to the real zstd. */
function zstdWrapper(parts: { tester?: string; compressor?: string }): void {
  const wrapper = script(
    'zstd',
    [
      'case " $* " in',
      `  *" -t "*) ${parts.tester ?? `exec '${realZstd}' "$@"`} ;;`,
      `  *) ${parts.compressor ?? `exec '${realZstd}' "$@"`} ;;`,
      'esac',
    ].join('\n'),
  );
  process.env.PATH = `${path.dirname(wrapper)}${path.delimiter}${originalPath}`;
}

function copy(tool: string, size: number, storage: Storage): Promise<CopiedBinlog[]> {
  const cluster = ClusterSchema.parse({ name: 'unit', host: '127.0.0.1', user: 'backup', tools: { binlog: tool } });
  return copyBinlogFiles({
    cluster,
    product: 'mariadb',
    files: [{ name: 'mariadb-bin.000001', size }],
    startPosition: 4,
    compression: 'zstd',
    compressionLevel: 1,
    storage,
    stagingKey: 'unit/.staging/x',
  });
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a copy is tested as it is written and stored whole', async () => {
  const source = path.join(work, 'plain.bin');
  const size = binlog(source, 3_000_000, compressible);
  const root = path.join(work, 'repo-plain');
  const [copied] = await copy(binlogTool(source), size, new LocalStorage(root));
  const stored = readFileSync(path.join(root, 'unit/.staging/x/mariadb-bin.000001.zst'));
  expect(copied?.artifact).toMatchObject({ size: stored.length, sha256: sha256(stored), rawSize: size, rawSha256: sha256(readFileSync(source)) });
  expect(execFileSync(realZstd, ['-q', '-d', '-c'], { input: stored, maxBuffer: 2 * size }).equals(readFileSync(source))).toBe(true);
});

test('when the tester loses its input, the error says so instead of blaming the data', async () => {
  const source = path.join(work, 'lost.bin');
  const size = binlog(source, 2_000_000, compressible);
  const gate = path.join(work, 'lost.gate');
  // zstd -t's input is cut before a single byte is produced: it reads nothing and says
  // "unexpected end of file", as in the failed benchmark runs, and nothing written to it
  // can arrive.
  zstdWrapper({ tester: `exec 0</dev/null; touch '${gate}'; exec '${realZstd}' "$@"` });
  const failure = copy(binlogTool(source, gate), size, new LocalStorage(path.join(work, 'repo-lost')));
  // Whether a write reached the closed input first (EPIPE) or zstd -t's exit closed it first
  // depends on timing; either way the tester was given nothing, and the error says so.
  await expect(failure).rejects.toThrow(
    /unexpected end of file \(zstd -t was given 0 of the \d+ compressed bytes(, then writing to it failed: write (EPIPE|ECONNRESET)|, and its input closed before the end of the stream)\)/,
  );
});

test('a damaged compressed stream is refused with zstd -t’s own verdict', async () => {
  const source = path.join(work, 'damaged.bin');
  const size = binlog(source, 2_000_000, compressible);
  // The compressor's output with one byte changed in the middle.
  zstdWrapper({ compressor: `'${realZstd}' "$@" | { head -c 20000; head -c 1 >/dev/null; printf 'X'; cat; }` });
  const failure = copy(binlogTool(source), size, new LocalStorage(path.join(work, 'repo-damaged')));
  await expect(failure).rejects.toThrow(/zstd -q -t failed \(1\): .*(corrupt|checksum)/i);
});

test('the tester sets the pace: nothing is stored ahead of what it has taken', async () => {
  const source = path.join(work, 'slow.bin');
  const size = binlog(source, 8_000_000, (n) => randomBytes(n)); // does not compress: 8 MB to test
  const gate = path.join(work, 'slow.gate');
  // zstd -t starts reading only when the gate opens.
  zstdWrapper({ tester: `while [ ! -e '${gate}' ]; do sleep 0.05; done; exec '${realZstd}' "$@"` });
  const root = path.join(work, 'repo-slow');
  const file = path.join(root, 'unit/.staging/x/mariadb-bin.000001.zst');
  const copying = copy(binlogTool(source), size, new LocalStorage(root));
  copying.catch(() => undefined);
  // Watch the stored file until it has stopped growing for a second.
  let stored = -1;
  for (let still = 0, waited = 0; still < 1000 && waited < 20_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = existsSync(file) ? statSync(file).size : 0;
    still = now === stored && now > 0 ? still + 50 : 0;
    stored = now;
  }
  writeFileSync(gate, '');
  const [copied] = await copying;
  expect(copied?.artifact.size).toBeGreaterThan(8_000_000);
  // What a pipe and a stream buffer hold, not the stream: it waited for the tester.
  expect(stored).toBeLessThan(2_000_000);
});

test('a store that fails ends the copy instead of leaving it waiting on the tester', async () => {
  const source = path.join(work, 'store.bin');
  const size = binlog(source, 3_000_000, compressible);
  const storage = new LocalStorage(path.join(work, 'repo-store'));
  let taken = 0;
  // A store that fails after 100 kB, as a full disk would.
  storage.openWrite = () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        taken += chunk.length;
        cb(taken > 100_000 ? new Error('ENOSPC: no space left on device, write') : null);
      },
    });
    const done = new Promise<void>((resolve, reject) => stream.on('finish', resolve).on('error', reject));
    done.catch(() => undefined);
    return Promise.resolve({ stream, done });
  };
  await expect(copy(binlogTool(source), size, storage)).rejects.toThrow();
}, 30_000);
