import type * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import type { StepContext, WorkflowContext, WorkflowEngine } from '../../kernel/workflow.js'

/** A codec whose encoded form is JSON (what a journaled step result or workflow result must be). */
export type JsonCodec<A> = t.Type<A, Json, unknown>

function decoded<A>(codec: JsonCodec<A>, value: unknown, what: string, details: Record<string, unknown>): A {
  const result = codec.decode(value)
  if (isLeft(result)) throw new DrError('E_CORRUPT', `${what} does not decode as ${codec.name}`, details)
  return result.right
}

/**
 * Options of {@link stepWith}: a compensation (it receives the decoded result) and a retry policy.
 *
 * @public
 */
export interface CodecStepOptions<A> {
  readonly compensate?: (result: A, context: StepContext) => Promise<void>
  readonly retry?: RetryPolicy
}

/**
 * Runs workflow step `name` whose result is described by `codec`: the result is encoded before it is journaled,
 * and decoded again — also when it is replayed from the journal, so a damaged or old-format record is refused
 * with `E_CORRUPT` rather than trusted.
 *
 * @public
 */
export async function stepWith<A>(wf: WorkflowContext, codec: JsonCodec<A>, name: string, run: (context: StepContext) => Promise<A>, options: CodecStepOptions<A> = {}): Promise<A> {
  const details = { workflow: wf.workflowId, step: name }
  const { compensate, retry } = options
  const raw = await wf.step(name, async (context) => codec.encode(await run(context)), {
    ...(retry === undefined ? {} : { retry }),
    ...(compensate === undefined ? {} : { compensate: (result: Json, context: StepContext) => compensate(decoded(codec, result, `the journaled result of step "${name}"`, details), context) }),
  })
  return decoded(codec, raw, `the journaled result of step "${name}" of workflow "${wf.workflowId}"`, details)
}

/**
 * Runs (or continues, or replays) child workflow `id` of `type` with `input` and decodes its result with `codec`.
 *
 * @public
 */
export async function runWith<A, I>(workflows: WorkflowEngine, codec: JsonCodec<A>, type: string, id: string, input: I, inputCodec: JsonCodec<I>): Promise<A> {
  return decoded(codec, await workflows.run(type, id, inputCodec.encode(input)), `the result of workflow "${id}"`, { workflow: id })
}

/**
 * Continues the interrupted workflow `id` and decodes its result with `codec`.
 *
 * @public
 */
export async function resumeWith<A>(workflows: WorkflowEngine, codec: JsonCodec<A>, id: string): Promise<A> {
  return decoded(codec, await workflows.resume(id), `the result of workflow "${id}"`, { workflow: id })
}
