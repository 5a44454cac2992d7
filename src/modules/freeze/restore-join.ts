import * as t from 'io-ts'
import { DrError, isDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { FreezeContext } from './context.js'
import { decideStartRestore } from './decide.js'
import { RestoreSummaryCodec, type RestoreSummary } from './state.js'

/**
 * What the `begin` step of a restore recorded: it started (when), or another coordinator's restore of the volume
 * was running already and this one joins it. A plain number is how earlier versions recorded a start.
 *
 * @internal
 */
export const BeginCodec = t.union([
  t.number,
  t.type({ startedAt: t.number }),
  t.type({ join: t.type({ restoreId: t.string, workflowId: t.string }) }),
])

/**
 * What the `begin` step of a restore recorded.
 *
 * @internal
 */
export type Begin = t.TypeOf<typeof BeginCodec>

/** How often a restore that joined another coordinator's looks whether that one has ended. */
const JOIN_POLL_MS = 50

/**
 * The `begin` step: records that restore `restoreId` of volume `key` starts (one restore per volume), or — when
 * another coordinator on the same state store is restoring the volume already — that this one joins it. Idempotent.
 *
 * @internal
 */
export async function beginRestore(ctx: FreezeContext, wf: WorkflowContext, restore: { key: string; restoreId: string; channel: string }): Promise<Begin> {
  const { key, restoreId } = restore
  const at = ctx.clock.now()
  const running = (): Begin | undefined => {
    const record = ctx.state.protection(key)
    if (record.restore?.restoreId === restoreId) return { startedAt: record.restore.startedAt }
    if (record.lastRestore?.restoreId === restoreId) return { startedAt: record.lastRestore.startedAt }
    return record.restore === null ? undefined : { join: { restoreId: record.restore.restoreId, workflowId: record.restore.workflowId } }
  }
  await ctx.state.refresh()
  const known = running()
  if (known !== undefined) return known
  try {
    await ctx.state.execute((state) => decideStartRestore(state, key, { restoreId, workflowId: wf.workflowId, startedAt: at, channel: restore.channel }))
  } catch (error) {
    if (!isDrError(error, 'E_CONFLICT')) throw error
  }
  const begun = running()
  if (begun === undefined) throw new DrError('E_CONFLICT', `restore ${restoreId} of volume ${key} could not start`, { key, restoreId })
  return begun
}

/**
 * The `join` step: waits until the restore another coordinator runs for the volume has ended, catches up with the
 * state it left, and returns how it ended.
 *
 * @internal
 */
export async function awaitJoined(ctx: FreezeContext, wf: WorkflowContext, key: string, other: { restoreId: string; workflowId: string }): Promise<Json> {
  for (;;) {
    const history = await ctx.workflows.history(other.workflowId)
    if (history?.status !== 'running') break
    await ctx.clock.sleep(JOIN_POLL_MS, wf.signal)
  }
  await ctx.state.refresh()
  const last = ctx.state.protection(key).lastRestore
  const summary: RestoreSummary =
    last !== null && last.restoreId === other.restoreId
      ? last
      : {
          restoreId: other.restoreId,
          outcome: 'failed',
          startedAt: ctx.clock.now(),
          finishedAt: ctx.clock.now(),
          source: null,
          freezeWindowMs: null,
          code: 'E_UNAVAILABLE',
          message: `restore ${other.restoreId} ended without recording how`,
        }
  return RestoreSummaryCodec.encode(summary) as unknown as Json
}
