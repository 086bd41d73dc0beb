/** Repository totals per backup type (pure: from manifests). */
import { BACKUP_TYPES, totalRawBytes, totalStoredBytes, type BackupType, type Manifest } from './manifest';

export interface TypeTotals {
  type: BackupType;
  count: number;
  storedBytes: number;
  rawBytes: number;
  /** Space saved by compression, 0..1. */
  saving: number;
  oldest: string | null;
  newest: string | null;
}

export function storageTotals(manifests: readonly Manifest[]): TypeTotals[] {
  return BACKUP_TYPES.map((type) => {
    const of = manifests.filter((m) => m.type === type);
    const storedBytes = of.reduce((n, m) => n + totalStoredBytes(m), 0);
    const rawBytes = of.reduce((n, m) => n + totalRawBytes(m), 0);
    const times = of.map((m) => m.startedAt).sort();
    return {
      type,
      count: of.length,
      storedBytes,
      rawBytes,
      saving: rawBytes === 0 ? 0 : 1 - storedBytes / rawBytes,
      oldest: times[0] ?? null,
      newest: times[times.length - 1] ?? null,
    };
  });
}
