import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes that make runs findable in the Temporal UI ("all runs of
 * cluster shop-prod", "every backup of type full", "what waits for a person").
 * Registered on the dev server at start and by `dbops setup temporal` elsewhere.
 */
export const SA_CLUSTER = defineSearchAttributeKey('DbopsCluster', SearchAttributeType.KEYWORD);
export const SA_OPERATION = defineSearchAttributeKey('DbopsOperation', SearchAttributeType.KEYWORD);
export const SA_BACKUP_TYPE = defineSearchAttributeKey('DbopsBackupType', SearchAttributeType.KEYWORD);
export const SA_AWAITING_APPROVAL = defineSearchAttributeKey('DbopsAwaitingApproval', SearchAttributeType.BOOL);

export const ALL_SEARCH_ATTRIBUTES = [SA_CLUSTER, SA_OPERATION, SA_BACKUP_TYPE, SA_AWAITING_APPROVAL] as const;
