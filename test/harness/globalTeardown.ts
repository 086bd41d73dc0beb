import { rmSync } from 'node:fs';
import type { HarnessHandles } from './state';

export default async function globalTeardown(): Promise<void> {
  const handles = (globalThis as { __DBOPS_HARNESS__?: HarnessHandles }).__DBOPS_HARNESS__;
  if (!handles) return;
  await handles.temporal?.teardown().catch(() => undefined);
  await handles.mariadb?.stop().catch(() => undefined);
  if (!process.env.DBOPS_KEEP_TEST_DIR) rmSync(handles.baseDir, { recursive: true, force: true });
}
