/**
 * Where Temporal's time-skipping test server is: $TEMPORAL_TEST_SERVER, else what
 * scripts/setup.sh installed into .tools/temporal-test-server. Never the SDK's own
 * download (it needs temporal.download, which CI and sandboxes cannot reach).
 */
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';

export const TEST_SERVER_ENV = 'TEMPORAL_TEST_SERVER';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export function testServerPath(env: NodeJS.ProcessEnv = process.env, root = PROJECT_ROOT): string {
  const fromEnv = env[TEST_SERVER_ENV];
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`${TEST_SERVER_ENV}=${fromEnv} is not an executable file; unset it or fix the path`);
    return fromEnv;
  }
  const installed = path.join(root, '.tools', 'temporal-test-server', 'bin', 'temporal-test-server');
  if (executable(installed)) return installed;
  throw new Error(
    `Temporal test server not found at ${installed}: run \`bash scripts/setup.sh\` (npm test does) or set ${TEST_SERVER_ENV}=/path/to/temporal-test-server`,
  );
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
