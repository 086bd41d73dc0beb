/**
 * Where the repository's bytes live, behind one interface: the local filesystem today, an
 * object store next. Keys are relative, '/'-separated paths built only by
 * repository/layout; a driver refuses any other shape (no '..', nothing absolute).
 *
 * What the repository relies on, per operation:
 *   - writeText: readers see the old content or the new, never a part;
 *   - createExclusive: creates the key only if it does not exist, atomically (the lock's
 *     compare-and-swap);
 *   - moveTree: a folder appears at its new place whole (a filesystem renames; an object
 *     store copies and then deletes, and the manifest, copied last, is what makes a backup
 *     visible);
 *   - openWrite: the object is complete when `done` resolves.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

export interface ObjectInfo {
  size: number;
  modified: Date;
}

export interface Storage {
  /** For messages: file:///srv/backups, s3://bucket/prefix. */
  readonly description: string;
  readText(key: string): Promise<string | null>;
  writeText(key: string, text: string): Promise<void>;
  createExclusive(key: string, text: string): Promise<boolean>;
  /** The names directly under a folder, sorted (none when it does not exist). */
  children(prefix: string): Promise<string[]>;
  stat(key: string): Promise<ObjectInfo | null>;
  openRead(key: string): Promise<Readable>;
  openWrite(key: string): Promise<{ stream: Writable; done: Promise<void> }>;
  remove(key: string): Promise<void>;
  removeTree(prefix: string): Promise<void>;
  moveTree(from: string, to: string): Promise<void>;
  /** Removes a folder if it is empty (a day's folder after its last backup went); nothing on stores without folders. */
  pruneEmpty(prefix: string): Promise<void>;
  /** Free and total bytes where the store can tell (a local disk); null otherwise. */
  capacity(): Promise<{ free: number; total: number } | null>;
  /** The local path of a key, for drivers that have one (tools that read files). */
  localPath?(key: string): string;
  /**
   * True where moving a folder means copying every byte (object stores): backups are then
   * written straight into their final folder and become visible when the manifest, written
   * last, appears. Elsewhere they are staged and moved into place with one rename.
   */
  readonly publishesInPlace?: boolean;
  /** Lets go of network clients, for drivers that hold any. */
  close?(): void;
}

/** A key as the layout builds it: relative, '/'-separated, no empty, '.' or '..' segments. */
export function checkKey(key: string): string {
  if (key === '') return key;
  const parts = key.split('/');
  if (key.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\') || p.includes('\0'))) {
    throw new Error(`not a repository key: ${JSON.stringify(key)}`);
  }
  return key;
}

async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The repository on a local (or mounted) filesystem: files 0600, folders 0700. */
export class LocalStorage implements Storage {
  readonly description: string;

  constructor(readonly root: string) {
    this.description = `file://${root}`;
  }

  localPath(key: string): string {
    return key === '' ? this.root : path.join(this.root, ...checkKey(key).split('/'));
  }

  async readText(key: string): Promise<string | null> {
    try {
      return await readFile(this.localPath(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** temp file + fsync + rename + fsync(folder). */
  async writeText(key: string, text: string): Promise<void> {
    const file = this.localPath(key);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await fsyncPath(path.dirname(file));
  }

  /** The content is written to a temporary file first and hard-linked into place: a link fails if the name exists. */
  async createExclusive(key: string, text: string): Promise<boolean> {
    const file = this.localPath(key);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, file);
      await fsyncPath(path.dirname(file));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
  }

  async children(prefix: string): Promise<string[]> {
    try {
      return (await readdir(this.localPath(prefix))).sort();
    } catch {
      return [];
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.localPath(key));
      return { size: s.size, modified: s.mtime };
    } catch {
      return null;
    }
  }

  async openRead(key: string): Promise<Readable> {
    const stream = createReadStream(this.localPath(key));
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    return stream;
  }

  async openWrite(key: string): Promise<{ stream: Writable; done: Promise<void> }> {
    const file = this.localPath(key);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const stream = createWriteStream(file, { mode: 0o600, flush: true });
    return { stream, done: finished(stream) };
  }

  async remove(key: string): Promise<void> {
    await rm(this.localPath(key), { force: true });
  }

  async removeTree(prefix: string): Promise<void> {
    await rm(this.localPath(prefix), { recursive: true, force: true });
  }

  /** One rename: the folder is at its old place or its new one. */
  async moveTree(from: string, to: string): Promise<void> {
    const target = this.localPath(to);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    await rename(this.localPath(from), target);
    await fsyncPath(path.dirname(target));
  }

  async pruneEmpty(prefix: string): Promise<void> {
    await rmdir(this.localPath(prefix)).catch(() => undefined);
  }

  async capacity(): Promise<{ free: number; total: number } | null> {
    try {
      const fs = await statfs(this.root);
      return { free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize };
    } catch {
      return null;
    }
  }
}
