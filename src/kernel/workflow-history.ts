import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, DrErrorCodes, type DrErrorCode } from './errors.js'
import { JsonValue, type Json } from './codecs.js'
import type { JournalRecord } from './state-store.js'

const ErrorRecord = t.type({
  code: t.keyof(Object.fromEntries(DrErrorCodes.map((c) => [c, null])) as Record<DrErrorCode, null>),
  message: t.string,
  details: t.UnknownRecord,
})

/**
 * The journal records of one workflow run, as io-ts codecs: started, a step completed or failed, a step's
 * compensation done, and the terminal completed/failed records.
 *
 * @public
 */
export const WorkflowRecord = t.union([
  t.type({ type: t.literal('workflow.started'), data: t.type({ workflowType: t.string, input: JsonValue }) }),
  t.type({ type: t.literal('step.completed'), data: t.type({ index: t.number, name: t.string, result: JsonValue }) }),
  t.type({ type: t.literal('step.failed'), data: t.type({ index: t.number, name: t.string, error: ErrorRecord }) }),
  t.type({ type: t.literal('step.compensated'), data: t.type({ index: t.number, name: t.string }) }),
  t.type({ type: t.literal('workflow.completed'), data: t.type({ result: JsonValue }) }),
  t.type({ type: t.literal('workflow.failed'), data: t.type({ error: ErrorRecord }) }),
])

/**
 * One decoded workflow journal record.
 *
 * @public
 */
export type WorkflowRecord = t.TypeOf<typeof WorkflowRecord>

/**
 * Where a workflow run stands, folded from its journal: `running` (started, not finished — resumable after a
 * crash or a lost lease), `completed` or `failed` (compensated).
 *
 * @public
 */
export type WorkflowStatus = 'running' | 'completed' | 'failed'

/**
 * What a recorded step left behind: its result, or the error it failed with, and whether it was compensated.
 *
 * @public
 */
export interface RecordedStep {
  readonly index: number
  readonly name: string
  readonly outcome: { readonly ok: true; readonly result: Json } | { readonly ok: false; readonly error: DrError }
  readonly compensated: boolean
}

/**
 * A workflow run folded from its journal.
 *
 * @public
 */
export interface WorkflowHistory {
  readonly id: string
  readonly workflowType: string
  readonly input: Json
  readonly status: WorkflowStatus
  readonly steps: readonly RecordedStep[]
  readonly result?: Json
  readonly error?: DrError
  /** The journal version the fold reflects (the expected version of the next append). */
  readonly version: number
}

function errorFrom(record: t.TypeOf<typeof ErrorRecord>): DrError {
  return new DrError(record.code, record.message, record.details)
}

/**
 * Folds the journal records of workflow `id` into its history. Returns undefined for an empty journal;
 * rejects with `E_CORRUPT` when a record fails its codec or comes out of order.
 *
 * @public
 */
export function foldWorkflowHistory(id: string, records: readonly JournalRecord[]): WorkflowHistory | undefined {
  if (records.length === 0) return undefined
  let history: { -readonly [K in keyof WorkflowHistory]: WorkflowHistory[K] } | undefined
  const steps: RecordedStep[] = []
  for (const raw of records) {
    const decoded = WorkflowRecord.decode({ type: raw.type, data: raw.data })
    if (isLeft(decoded)) {
      throw new DrError('E_CORRUPT', `workflow "${id}" journal record ${raw.version} is invalid`, { workflowId: id, version: raw.version })
    }
    const record = decoded.right
    if (history === undefined) {
      if (record.type !== 'workflow.started') {
        throw new DrError('E_CORRUPT', `workflow "${id}" journal does not begin with workflow.started`, { workflowId: id })
      }
      history = { id, workflowType: record.data.workflowType, input: record.data.input, status: 'running', steps, version: raw.version }
      continue
    }
    history.version = raw.version
    switch (record.type) {
      case 'workflow.started':
        throw new DrError('E_CORRUPT', `workflow "${id}" was started twice`, { workflowId: id, version: raw.version })
      case 'step.completed':
      case 'step.failed': {
        if (record.data.index !== steps.length) {
          throw new DrError('E_CORRUPT', `workflow "${id}" step ${record.data.index} recorded out of order`, { workflowId: id })
        }
        const outcome =
          record.type === 'step.completed'
            ? ({ ok: true, result: record.data.result } as const)
            : ({ ok: false, error: errorFrom(record.data.error) } as const)
        steps.push({ index: record.data.index, name: record.data.name, outcome, compensated: false })
        break
      }
      case 'step.compensated': {
        const step = steps[record.data.index]
        if (step === undefined) throw new DrError('E_CORRUPT', `workflow "${id}" compensated an unknown step`, { workflowId: id })
        steps[record.data.index] = { ...step, compensated: true }
        break
      }
      case 'workflow.completed':
        history.status = 'completed'
        history.result = record.data.result
        break
      case 'workflow.failed':
        history.status = 'failed'
        history.error = errorFrom(record.data.error)
        break
    }
  }
  return history
}
