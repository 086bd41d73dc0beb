/**
 * The workflows' boundary: an input that does not parse fails the run at once with the
 * field and the fix (InvalidInput, never retried), instead of throwing inside the workflow
 * and wedging it in a loop of failed workflow tasks.
 */
import { Failure } from '../domain/failures';
import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { parseInput } from '../domain/inputs';

export function accept<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.infer<S> {
  const parsed = parseInput(schema, raw, what);
  if (!parsed.ok) throw ApplicationFailure.nonRetryable(parsed.message, Failure.InvalidInput);
  return parsed.value;
}

export function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, Failure.InvalidInput);
}
