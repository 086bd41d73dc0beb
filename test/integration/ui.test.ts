/**
 * The Temporal Web UI as an engineer uses it, in a real headless Chromium (Debian's,
 * driven by playwright-core): a backup run is listed and can be filtered by cluster; a
 * restore waiting for approval shows as waiting.
 */
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startBackup, waitForManifest } from '../../src/client/backups';
import { approvalState, decide, startTableRestore } from '../../src/client/restores';
import { parseTarget } from '../../src/domain/restoreTarget';
import { seedSampleDatabase } from '../../src/dev/sampleData';
import { asPerson, harness, makeTestConfig, rootConnection, temporalClient, withWorker } from '../harness/context';

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
});

async function textInAnyFrame(page: Page, text: string, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      const body = await frame.locator('body').innerText().catch(() => '');
      if (body.includes(text)) return true;
    }
    await page.waitForTimeout(250);
  }
  return false;
}

async function workflowsPage(page: Page, query: string): Promise<void> {
  await page.goto(`${harness().uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
}

test('a backup run is listed in the UI and the cluster filter narrows the list; a restore waiting for approval shows as waiting', async () => {
  const conn = await rootConnection();
  await seedSampleDatabase(conn, { database: 'uitest', customers: 10, orders: 50 });
  await conn.end();
  const ui = makeTestConfig('ui', { databases: ['uitest'], cluster: 'ui-cluster' });
  const other = makeTestConfig('uiother', { databases: ['uitest'], cluster: 'other-cluster' });
  const { client, close } = await temporalClient();
  const page = await browser.newPage();
  try {
    const mine = await withWorker(ui.config, async () => {
      const handle = await startBackup(client, ui.config, 'full', { cluster: 'ui-cluster', requestedBy: 'jest' });
      await waitForManifest(handle);
      return handle.workflowId;
    });
    const theirs = await withWorker(other.config, async () => {
      const handle = await startBackup(client, other.config, 'full', { cluster: 'other-cluster' }, new Date(Date.now() + 1000));
      await waitForManifest(handle);
      return handle.workflowId;
    });

    await workflowsPage(page, 'DbopsCluster="ui-cluster"');
    await page.getByText(mine).filter({ visible: true }).first().waitFor({ timeout: 30_000 });
    expect(await page.getByText(theirs).count()).toBe(0);
    await workflowsPage(page, 'DbopsBackupType="full"');
    await page.getByText(theirs).filter({ visible: true }).first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ui.dir, 'workflows.png'), fullPage: true });

    // A table restore that waits for a person: listed as running and awaiting approval.
    await withWorker(ui.config, async () => {
      const restore = await startTableRestore(client, ui.config, { cluster: 'ui-cluster', database: 'uitest', tables: ['orders'], target: parseTarget('latest'), swap: true });
      for (let i = 0; i < 200 && (await approvalState(client, restore.workflowId).catch(() => null))?.status !== 'pending'; i++) await new Promise((r) => setTimeout(r, 100));
      await workflowsPage(page, 'DbopsAwaitingApproval=true');
      const row = page.getByText(restore.workflowId).filter({ visible: true }).first();
      await row.waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(ui.dir, 'awaiting-approval.png'), fullPage: true });
      await row.click();
      // The run's current details say what it waits for and how to answer.
      const metadata = page.getByText('User Metadata', { exact: true }).first();
      await metadata.waitFor({ timeout: 30_000 });
      await metadata.click();
      // The UI renders workflow markdown in a sandboxed frame: look in every frame.
      expect(await textInAnyFrame(page, 'waiting for approval')).toBe(true);
      expect(await textInAnyFrame(page, 'approvers: alice, bob')).toBe(true);
      await page.screenshot({ path: path.join(ui.dir, 'restore-waiting.png'), fullPage: true });
      await asPerson('alice', (alice) => decide(alice, restore.workflowId, 'reject', 'alice', 'UI test done'));
      await restore.result();
    });
  } finally {
    await page.close();
    await close();
  }
});
