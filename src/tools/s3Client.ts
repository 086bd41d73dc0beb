/**
 * Making an S3 client, in one place. The AWS SDK warns, once per process, when it runs on a
 * Node older than the one its future releases will need (NodeVersionSupportWarning). Our
 * SDK version is pinned and supports this Node, so the warning only clutters the CLI's
 * output. The SDK's own switch for it is the variable below, read when a client is made:
 * we set it for that moment only (when the operator has not set it either way), so
 * nothing else changes and other warnings still show.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

const NODE_VERSION_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

export function createS3Client(config: S3ClientConfig): S3Client {
  if (process.env[NODE_VERSION_WARNING_SWITCH] !== undefined) return new S3Client(config);
  process.env[NODE_VERSION_WARNING_SWITCH] = 'true';
  try {
    return new S3Client(config);
  } finally {
    delete process.env[NODE_VERSION_WARNING_SWITCH];
  }
}
