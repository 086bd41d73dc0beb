import { backupDirectory, backupId, backupWorkflowId, compactUtc, formatBytes, repoVerifyWorkflowId } from '../../src/domain/naming';
import { layout } from '../../src/repository/layout';
import { isValidClusterName, quoteIdentifier } from '../../src/domain/identifiers';

test('ids and paths read well and sort by time', () => {
  const at = new Date('2026-11-22T14:03:07.123Z');
  expect(compactUtc(at)).toBe('20261122T140307Z');
  expect(backupId('full', at)).toBe('20261122T140307.123Z-full');
  expect(backupWorkflowId('full', 'shop-prod', at)).toBe('backup-full/shop-prod/20261122T140307.123Z');
  expect(backupDirectory('shop-prod', 'full', '20261122T140307.123Z-full', at)).toBe('shop-prod/full/2026-11-22/20261122T140307.123Z-full');
  expect(formatBytes(1536)).toBe('1.5 KiB');
  expect(repoVerifyWorkflowId('shop-prod', at)).toBe('repo-verify/shop-prod/20261122T140307.123Z');
  expect(repoVerifyWorkflowId(null, at)).toBe('repo-verify/20261122T140307.123Z');
  // A backup's folder follows from its id alone, as the backup workflows place it.
  expect(layout.backupOfId('shop-prod', backupId('full', at))).toBe(backupDirectory('shop-prod', 'full', backupId('full', at), at));
  expect(layout.backupOfId('shop-prod', '20261122T140307Z-incremental')).toBe('shop-prod/incremental/2026-11-22/20261122T140307Z-incremental');
  expect(() => layout.backupOfId('shop-prod', '../20261122T140307Z-full')).toThrow(/not a backup id/);
  expect(layout.verifyReport('shop-prod', '20261122T140307Z')).toBe('shop-prod/verify/20261122T140307Z.json');
  expect(() => layout.verifyReport('shop-prod', '../x')).toThrow(/not a run key/);
  expect(() => layout.listed('shop-prod/.staging/x', '..')).toThrow(/not a listed name/);
});

test('identifiers outside the safe subset are refused, never escaped', () => {
  expect(quoteIdentifier('orders_2026')).toBe('`orders_2026`');
  expect(() => quoteIdentifier('x`; DROP DATABASE shop; --')).toThrow(/invalid SQL identifier/);
  expect(isValidClusterName('shop-prod')).toBe(true);
  expect(isValidClusterName('Shop Prod')).toBe(false);
});
