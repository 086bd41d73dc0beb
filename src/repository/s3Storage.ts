/**
 * The repository in an S3-compatible object store (AWS S3, or any server that speaks its
 * API with conditional writes). One file for the whole driver, as the local one is: each
 * operation below is short, and the error mapping they share sits at the end.
 * How each promise of the Storage interface is kept here:
 *   - writeText: one PutObject; S3 replaces an object whole.
 *   - createExclusive: PutObject with If-None-Match: * (the store refuses it when the key
 *     exists), the lock's compare-and-swap.
 *   - openWrite: a streaming multipart upload in parts of 8 MiB, two in flight: memory
 *     stays bounded and nothing touches the local disk, whatever the size. The object
 *     exists only once the upload completes; a writer that fails aborts the upload.
 *   - moveTree: a server-side copy of every object, the manifest last (it is what makes a
 *     backup visible), then the sources are deleted, the manifest first. Large objects are
 *     copied in ranges (one CopyObject stops at 5 GiB).
 *   - removeTree: also aborts the multipart uploads left under the folder (a worker killed
 *     while uploading leaves one, whose parts cost storage and are listed nowhere else).
 */
import { Readable, PassThrough, type Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createS3Client } from '../tools/s3Client';
import { checkKey, type ObjectInfo, type Storage } from './storage';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** How openWrite uploads: also what the offsite benchmark's peer uses, so both upload alike. */
export const UPLOAD_PART_SIZE = 8 * MiB;
export const UPLOAD_PARTS_IN_FLIGHT = 2;
/** S3's limits: parts of 5 MiB at least (but the last), 10,000 parts at most, 1000 keys per DeleteObjects. */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;
const DELETE_BATCH = 1000;
const MANIFEST = 'manifest.json';

export interface S3StorageOptions {
  /** An S3-compatible server's URL; AWS S3 when absent. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Where the repository starts in the bucket ('' for the bucket's root). */
  prefix: string;
  /** Bucket in the path (most S3-compatible servers) rather than in the host name. */
  pathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Objects larger than this are copied in ranges; default 5 GiB, the most one CopyObject takes. */
  multipartCopyThreshold?: number;
  /** The size of each range of such a copy; default 512 MiB (at least 5 MiB). */
  copyPartSize?: number;
}

interface Listed {
  key: string;
  size: number;
}

/** What an error from the SDK or the network says about itself. */
function errorFacts(error: unknown): { name: string; status: number | undefined; code: string | undefined; message: string } {
  if (typeof error !== 'object' || error === null) return { name: '', status: undefined, code: undefined, message: String(error) };
  const e = error as { name?: unknown; code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return {
    name: typeof e.name === 'string' ? e.name : '',
    status: typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    message: typeof e.message === 'string' ? e.message : String(error),
  };
}

const CREDENTIAL_ERRORS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'AuthorizationHeaderMalformed', 'Forbidden']);
const NETWORK_ERRORS = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE'];

/**
 * The network failure an error stands for, if any. By its code, or by its message: the SDK
 * wraps a socket error it does not recognise as an Error (one from another realm) in a new
 * Error that keeps only the text.
 */
function networkError(code: string | undefined, name: string, message: string): string | null {
  if (code !== undefined && NETWORK_ERRORS.includes(code)) return code;
  if (name === 'TimeoutError') return name;
  return NETWORK_ERRORS.find((c) => message.includes(c)) ?? null;
}

/** Runs fn over items, at most `limit` at a time; the first failure is thrown once all have settled. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length && failures.length === 0) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
}

export class S3Storage implements Storage {
  /** Moving a folder copies every object: backups are written in place, manifest last. */
  readonly publishesInPlace = true;
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly endpointText: string;
  private readonly multipartCopyThreshold: number;
  private readonly copyPartSize: number;

  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.prefix = checkKey(options.prefix.replace(/^\/+|\/+$/g, ''));
    this.description = this.prefix === '' ? `s3://${this.bucket}` : `s3://${this.bucket}/${this.prefix}`;
    this.endpointText = options.endpoint ?? `AWS S3 (${options.region})`;
    this.multipartCopyThreshold = options.multipartCopyThreshold ?? 5 * GiB;
    this.copyPartSize = Math.max(options.copyPartSize ?? 512 * MiB, MIN_PART_SIZE);
    this.client = createS3Client({
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      region: options.region,
      forcePathStyle: options.pathStyle,
      credentials: { accessKeyId: options.credentials.accessKeyId, secretAccessKey: options.credentials.secretAccessKey },
      // Fail fast on an endpoint that does not answer; a long transfer is not cut short.
      requestHandler: { connectionTimeout: 10_000 },
    });
  }

  /** Closes the client's connections (the storage is not used afterwards). */
  close(): void {
    this.destroy();
  }

  destroy(): void {
    this.client.destroy();
  }

  /** The object's key in the bucket. */
  private objectKey(key: string): string {
    checkKey(key);
    if (this.prefix === '') return key;
    return key === '' ? this.prefix : `${this.prefix}/${key}`;
  }

  /** The listing prefix of a folder ('' is the repository's root). */
  private folder(key: string): string {
    const full = this.objectKey(key);
    return full === '' ? '' : `${full}/`;
  }

  private where(objectKey: string): string {
    return `s3://${this.bucket}/${objectKey}`;
  }

  /** An error that names the object and says what to check. */
  private failure(action: string, objectKey: string, error: unknown): Error {
    const { name, status, code, message } = errorFacts(error);
    const unreachable = networkError(code, name, message);
    let why: string;
    if (name === 'RequestTimeTooSkewed') {
      why = `the store says this machine's clock is off (${name}): fix the clock`;
    } else if (CREDENTIAL_ERRORS.has(name) || status === 403) {
      why = `the store refused the credentials (${name || status}): check the access key id and secret access key, and that they may use bucket ${this.bucket}`;
    } else if (name === 'NoSuchBucket') {
      why = `bucket ${this.bucket} does not exist at ${this.endpointText}: create it, or fix the bucket name`;
    } else if (unreachable !== null) {
      why = `cannot reach ${this.endpointText} (${unreachable}): check the endpoint and that the server is up`;
    } else {
      why = `${name && !message.startsWith(name) ? `${name}: ` : ''}${message}`;
    }
    return new Error(`${action} ${this.where(objectKey)} failed: ${why}`, { cause: error });
  }

  private async call<T>(action: string, objectKey: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.failure(action, objectKey, error);
    }
  }

  async readText(key: string): Promise<string | null> {
    const objectKey = this.objectKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return (await out.Body?.transformToString('utf8')) ?? '';
    } catch (error) {
      if (errorFacts(error).name === 'NoSuchKey') return null;
      throw this.failure('reading', objectKey, error);
    }
  }

  async writeText(key: string, text: string): Promise<void> {
    const objectKey = this.objectKey(key);
    const body = Buffer.from(text, 'utf8');
    await this.call('writing', objectKey, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: body, ContentLength: body.length })));
  }

  async createExclusive(key: string, text: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    try {
      const body = Buffer.from(text, 'utf8');
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: body, ContentLength: body.length, IfNoneMatch: '*' }));
      return true;
    } catch (error) {
      const { name, status } = errorFacts(error);
      // 412: the key exists. 409: another conditional write to it is under way, and one of them wins.
      if (status === 412 || name === 'PreconditionFailed' || status === 409 || name === 'ConditionalRequestConflict') return false;
      throw this.failure('creating', objectKey, error);
    }
  }

  async children(prefix: string): Promise<string[]> {
    const folder = this.folder(prefix);
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const page = await this.call('listing', folder, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: folder, Delimiter: '/', ContinuationToken: token })),
      );
      for (const p of page.CommonPrefixes ?? []) {
        const name = (p.Prefix ?? '').slice(folder.length).replace(/\/$/, '');
        if (name !== '') names.add(name);
      }
      for (const o of page.Contents ?? []) {
        const name = (o.Key ?? '').slice(folder.length);
        if (name !== '' && !name.includes('/')) names.add(name);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return [...names].sort();
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const objectKey = this.objectKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return { size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0) };
    } catch (error) {
      const { name, status } = errorFacts(error);
      if (status === 404 || name === 'NotFound' || name === 'NoSuchKey') return null;
      throw this.failure('looking up', objectKey, error);
    }
  }

  async openRead(key: string): Promise<Readable> {
    const objectKey = this.objectKey(key);
    let body: unknown;
    try {
      body = (await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }))).Body;
    } catch (error) {
      if (errorFacts(error).name === 'NoSuchKey') throw new Error(`reading ${this.where(objectKey)} failed: the object does not exist`, { cause: error });
      throw this.failure('reading', objectKey, error);
    }
    if (!(body instanceof Readable)) throw new Error(`reading ${this.where(objectKey)} failed: the S3 client did not return a Node stream`);
    return body;
  }

  async openWrite(key: string): Promise<{ stream: Writable; done: Promise<void> }> {
    const objectKey = this.objectKey(key);
    const stream = new PassThrough();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: objectKey, Body: stream },
      partSize: UPLOAD_PART_SIZE,
      queueSize: UPLOAD_PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    // A writer's error reaches the upload through its read of the stream: the upload then
    // aborts (no parts left behind) and `done` rejects. This listener only keeps the error
    // from also being thrown as an unhandled stream error.
    stream.on('error', () => undefined);
    const done = upload.done().then(
      () => undefined,
      (error: unknown) => {
        // An upload that failed on its own reads no more. Ending its read of the stream
        // already ends the stream; this makes sure a writer never waits on it.
        stream.destroy(error instanceof Error ? error : new Error(String(error)));
        throw this.failure('uploading', objectKey, error);
      },
    );
    done.catch(() => undefined); // a writer that failed first may never await it
    return { stream, done };
  }

  async remove(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    await this.call('deleting', objectKey, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey })));
  }

  /** Every object under a listing prefix, with its size. */
  private async *listAll(folder: string): AsyncGenerator<Listed> {
    let token: string | undefined;
    do {
      const page = await this.call('listing', folder, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: folder, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private async hasObjects(folder: string): Promise<boolean> {
    const page = await this.call('listing', folder, () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: folder, MaxKeys: 1 })));
    return (page.Contents ?? []).length > 0;
  }

  private async deleteObjects(objectKeys: string[]): Promise<void> {
    for (let i = 0; i < objectKeys.length; i += DELETE_BATCH) {
      const batch = objectKeys.slice(i, i + DELETE_BATCH);
      const first = batch[0] ?? '';
      const out = await this.call('deleting', first, () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })),
      );
      const failed = out.Errors?.[0];
      if (failed) {
        throw this.failure('deleting', failed.Key ?? first, Object.assign(new Error(failed.Message ?? 'refused'), { name: failed.Code ?? 'DeleteFailed' }));
      }
    }
  }

  /** Aborts every multipart upload under a listing prefix. */
  private async abortUploads(folder: string): Promise<void> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.call('listing the uploads under', folder, () =>
        this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: folder, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined) continue;
        const { Key, UploadId } = upload;
        try {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }));
        } catch (error) {
          if (errorFacts(error).name !== 'NoSuchUpload') throw this.failure('aborting the upload of', Key, error);
        }
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /**
   * The uploads are aborted first: an upload that completes meanwhile becomes an object,
   * which the deletion after it then finds.
   */
  async removeTree(prefix: string): Promise<void> {
    const folder = this.folder(prefix);
    await this.abortUploads(folder);
    let batch: string[] = [];
    for await (const object of this.listAll(folder)) {
      batch.push(object.key);
      if (batch.length === DELETE_BATCH) {
        await this.deleteObjects(batch);
        batch = [];
      }
    }
    await this.deleteObjects(batch);
  }

  private copySource(objectKey: string): string {
    return `${encodeURIComponent(this.bucket)}/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
  }

  private async copy(source: Listed, target: string): Promise<void> {
    if (source.size > this.multipartCopyThreshold) {
      await this.copyInParts(source, target);
      return;
    }
    await this.call('copying to', target, () =>
      this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: target, CopySource: this.copySource(source.key) })),
    );
  }

  /** A server-side copy in byte ranges, for objects one CopyObject cannot take. */
  private async copyInParts(source: Listed, target: string): Promise<void> {
    const partSize = Math.max(this.copyPartSize, Math.ceil(source.size / MAX_PARTS));
    const created = await this.call('starting the copy to', target, () => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: target })));
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw new Error(`starting the copy to ${this.where(target)} failed: the store returned no upload id`);
    try {
      const ranges: { part: number; first: number; last: number }[] = [];
      for (let first = 0, part = 1; first < source.size; first += partSize, part++) ranges.push({ part, first, last: Math.min(first + partSize, source.size) - 1 });
      const parts: CompletedPart[] = [];
      await eachLimited(ranges, 4, async ({ part, first, last }) => {
        const out = await this.call(`copying part ${part} to`, target, () =>
          this.client.send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: target,
              UploadId: uploadId,
              PartNumber: part,
              CopySource: this.copySource(source.key),
              CopySourceRange: `bytes=${first}-${last}`,
            }),
          ),
        );
        parts.push({ PartNumber: part, ETag: out.CopyPartResult?.ETag });
      });
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.call('completing the copy to', target, () =>
        this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: uploadId, MultipartUpload: { Parts: parts } })),
      );
    } catch (error) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: uploadId })).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Copy everything, the manifest last; then delete the sources, the manifest first. A retry
   * after a partial move copies again what is still at the source (the same bytes), and a
   * retry after a whole one finds the source empty and the target there.
   */
  async moveTree(from: string, to: string): Promise<void> {
    const source = this.folder(from);
    const target = this.folder(to);
    if (from === '' || to === '' || target.startsWith(source) || source.startsWith(target)) {
      throw new Error(`cannot move ${this.where(source)} to ${this.where(target)}: one contains the other`);
    }
    const objects: Listed[] = [];
    for await (const object of this.listAll(source)) objects.push(object);
    if (objects.length === 0) {
      if (await this.hasObjects(target)) return; // moved by an earlier try
      throw new Error(`moving ${this.where(source)} failed: there is nothing there`);
    }
    const isManifest = (o: Listed): boolean => o.key === `${source}${MANIFEST}`;
    const manifests = objects.filter(isManifest);
    const rest = objects.filter((o) => !isManifest(o));
    const targetOf = (o: Listed): string => target + o.key.slice(source.length);
    await eachLimited(rest, 4, (o) => this.copy(o, targetOf(o)));
    for (const manifest of manifests) await this.copy(manifest, targetOf(manifest));
    await this.deleteObjects(manifests.map((o) => o.key));
    await this.deleteObjects(rest.map((o) => o.key));
  }

  /** Object stores have no folders to prune. */
  async pruneEmpty(_prefix: string): Promise<void> {
    // nothing to do
  }

  async capacity(): Promise<{ free: number; total: number } | null> {
    return null;
  }
}
