/**
 * One read-only view over several repositories holding the same layout: the primary and
 * its copies, nearest first. A key is read from the first repository that has it, so a
 * restore, a drill or a validation finds a backup wherever it survives (the worker's disk
 * lost, the copy in the bucket remains), and an artifact missing from one repository is
 * read from the next. Listings are the union. A repository that cannot be reached is
 * passed over while another answers; if none does, the nearest one's error is reported.
 */
import type { Readable, Writable } from 'node:stream';
import type { ObjectInfo, Storage } from './storage';

export class ReadThroughStorage implements Storage {
  readonly description: string;

  constructor(private readonly layers: readonly Storage[]) {
    if (layers.length === 0) throw new Error('ReadThroughStorage needs at least one repository');
    this.description = layers.map((l) => l.description).join(', then ');
  }

  /** The first layer's answer that is not null; errors only when no layer answered. */
  private async first<T>(ask: (s: Storage) => Promise<T | null>): Promise<T | null> {
    let firstError: unknown = null;
    let answered = false;
    for (const layer of this.layers) {
      try {
        const value = await ask(layer);
        answered = true;
        if (value !== null) return value;
      } catch (error) {
        firstError ??= error;
      }
    }
    if (!answered && firstError !== null) throw firstError;
    return null;
  }

  readText(key: string): Promise<string | null> {
    return this.first((s) => s.readText(key));
  }

  stat(key: string): Promise<ObjectInfo | null> {
    return this.first((s) => s.stat(key));
  }

  async openRead(key: string): Promise<Readable> {
    const layer = await this.first(async (s) => ((await s.stat(key)) ? s : null));
    // None has it: the nearest one's own "missing" error names the key.
    return (layer ?? this.layers[0]!).openRead(key);
  }

  async children(prefix: string): Promise<string[]> {
    const names = new Set<string>();
    let firstError: unknown = null;
    let answered = false;
    for (const layer of this.layers) {
      try {
        for (const name of await layer.children(prefix)) names.add(name);
        answered = true;
      } catch (error) {
        firstError ??= error;
      }
    }
    if (!answered && firstError !== null) throw firstError;
    return [...names].sort();
  }

  private readOnly(what: string): never {
    throw new Error(`${what}: the view over ${this.description} is read-only`);
  }

  writeText(key: string): Promise<void> {
    return this.readOnly(`writeText ${key}`);
  }
  createExclusive(key: string): Promise<boolean> {
    return this.readOnly(`createExclusive ${key}`);
  }
  openWrite(key: string): Promise<{ stream: Writable; done: Promise<void> }> {
    return this.readOnly(`openWrite ${key}`);
  }
  remove(key: string): Promise<void> {
    return this.readOnly(`remove ${key}`);
  }
  removeTree(prefix: string): Promise<void> {
    return this.readOnly(`removeTree ${prefix}`);
  }
  moveTree(from: string): Promise<void> {
    return this.readOnly(`moveTree ${from}`);
  }
  async pruneEmpty(): Promise<void> {
    // nothing to prune in a view
  }
  capacity(): Promise<{ free: number; total: number } | null> {
    return this.layers[0]!.capacity();
  }
}
