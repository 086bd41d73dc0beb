/**
 * The upload end of the offsite benchmark's peer, the shell pipeline a DBA would write:
 *   dump | zstd -T0 -3 | node dist/bench/s3Upload.js --endpoint URL --bucket B --key K \
 *     --access-key-id-file F --secret-access-key-file F
 * Streams stdin to one object with the AWS SDK's lib-storage Upload, the way
 * `aws s3 cp - s3://B/K` would (there is no aws CLI here), in the parts the repository's S3
 * driver uploads (8 MiB, two in flight), so the comparison is of what dbops does around
 * the upload, not of upload tuning. Credentials come from files, never from the command line.
 */
import { readFileSync } from 'node:fs';
import { Upload } from '@aws-sdk/lib-storage';
import { UPLOAD_PART_SIZE, UPLOAD_PARTS_IN_FLIGHT } from '../src/repository/s3Storage';
import { createS3Client } from '../src/tools/s3Client';

const FLAGS = ['endpoint', 'bucket', 'key', 'access-key-id-file', 'secret-access-key-file'] as const;
type Flag = (typeof FLAGS)[number];

function parse(argv: string[]): Record<Flag, string> | null {
  const out: Partial<Record<Flag, string>> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]?.replace(/^--/, '') as Flag;
    const value = argv[i + 1];
    if (!FLAGS.includes(name) || value === undefined) return null;
    out[name] = value;
  }
  return FLAGS.every((f) => out[f] !== undefined) ? (out as Record<Flag, string>) : null;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (!args) {
    process.stderr.write(`usage: node s3Upload.js ${FLAGS.map((f) => `--${f} VALUE`).join(' ')}  (uploads stdin)\n`);
    process.exitCode = 2;
    return;
  }
  const client = createS3Client({
    endpoint: args.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: readFileSync(args['access-key-id-file'], 'utf8').trim(),
      secretAccessKey: readFileSync(args['secret-access-key-file'], 'utf8').trim(),
    },
  });
  try {
    await new Upload({
      client,
      params: { Bucket: args.bucket, Key: args.key, Body: process.stdin },
      partSize: UPLOAD_PART_SIZE,
      queueSize: UPLOAD_PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    }).done();
  } finally {
    client.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`upload failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
