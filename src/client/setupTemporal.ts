/**
 * `dbops setup temporal`: registers the custom search attributes on a real cluster's
 * namespace (the dev server gets them at start). Idempotent: adds only what is missing.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SearchAttributeType } from '@temporalio/common';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/searchAttributes';

const INDEXED: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.KEYWORD]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.BOOL]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
};

export async function registerSearchAttributes(client: Client, namespace: string): Promise<{ added: string[]; present: string[] }> {
  const operator = client.connection.operatorService;
  const existing = await operator.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = ALL_SEARCH_ATTRIBUTES.filter((k) => !have.has(k.name));
  if (missing.length > 0) {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED[k.type] as temporal.api.enums.v1.IndexedValueType])),
    });
  }
  return { added: missing.map((k) => k.name), present: ALL_SEARCH_ATTRIBUTES.filter((k) => have.has(k.name)).map((k) => k.name) };
}
