import { backupDirectory, backupId, backupWorkflowId, compactUtc, formatBytes } from '../../src/domain/naming';
import { isValidClusterName, quoteIdentifier } from '../../src/domain/identifiers';

test('ids and paths read well and sort by time', () => {
  const at = new Date('2026-11-22T14:03:07.123Z');
  expect(compactUtc(at)).toBe('20261122T140307Z');
  expect(backupId('full', at)).toBe('20261122T140307.123Z-full');
  expect(backupWorkflowId('full', 'shop-prod', at)).toBe('backup-full/shop-prod/20261122T140307.123Z');
  expect(backupDirectory('shop-prod', 'full', '20261122T140307.123Z-full', at)).toBe('shop-prod/full/2026-11-22/20261122T140307.123Z-full');
  expect(formatBytes(1536)).toBe('1.5 KiB');
});

test('identifiers outside the safe subset are refused, never escaped', () => {
  expect(quoteIdentifier('orders_2026')).toBe('`orders_2026`');
  expect(() => quoteIdentifier('x`; DROP DATABASE shop; --')).toThrow(/invalid SQL identifier/);
  expect(isValidClusterName('shop-prod')).toBe(true);
  expect(isValidClusterName('Shop Prod')).toBe(false);
});
