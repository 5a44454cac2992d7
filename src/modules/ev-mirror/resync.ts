import * as t from 'io-ts'
import { callAdapter } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { EvContext } from './context.js'
import { commonSnapshot, decideReversed } from './decide.js'
import { directionOf, type EvSide } from './state.js'
import { setSideWritable, snapshotNamed, transferSteps } from './transfer-steps.js'

/**
 * The workflow type of an expandable-volume resync.
 *
 * @public
 */
export const EV_RESYNC_WORKFLOW = 'evMirror.resync'

/**
 * The journaled input of a resync: the relationship, the snapshot to take on the new primary and transfer back,
 * whether a safety snapshot of the old primary is taken first, the epoch after reversal and the transfer's
 * sequence number.
 *
 * @public
 */
export const EvResyncWorkflowInput = t.type({ id: t.string, snapshot: t.string, safetySnapshot: t.boolean, epoch: t.number, sequence: t.number })

/**
 * The name of the safety snapshot a resync takes of the old primary.
 *
 * @public
 */
export function safetySnapshotName(id: string, epoch: number): string {
  return `${id}.safety.${epoch}`
}

/**
 * The blocks the old primary changed after the common snapshot (every allocated block when there is none): the
 * writes a resync loses unless a safety snapshot keeps them.
 *
 * @public
 */
export async function oldPrimaryChanges(cx: EvContext, id: string): Promise<{ common: string | null; blocks: number }> {
  const { source: oldPrimary, destination: newPrimary } = directionOf(cx.rel(id))
  const common = commonSnapshot(await cx.volumes.listSnapshots(newPrimary), await cx.volumes.listSnapshots(oldPrimary))
  const entry = common === null ? undefined : await snapshotNamed(cx, oldPrimary, common)
  const record = await cx.record(oldPrimary)
  const storage = cx.sites(oldPrimary.site).storage
  let blocks = 0
  for (const m of record.members.filter((x) => x.state !== 'retired')) {
    const base = entry?.members.find((x) => x.volume === m.volume)?.snapshot ?? null
    const changed = await callAdapter(storage.kind, 'changedBlocks', () => storage.changedBlocks(m.volume, base, 'live'))
    blocks += changed.blocks.length
  }
  return { common, blocks }
}

async function ensureSnapshot(cx: EvContext, side: EvSide, name: string): Promise<string> {
  if ((await snapshotNamed(cx, side, name)) === undefined) await cx.volumes.snapshot({ site: side.site, volume: side.volume, name })
  return name
}

/**
 * Resynchronises after a failover (RS.1–6): a consistency-group snapshot of the new primary; the common snapshot
 * of both catalogs; an optional safety snapshot of the old primary; the old primary made read-only, its
 * readers redirected to the common snapshot and its constituents restored to it; the relationship reversed
 * (epoch raised); then the snapshot transferred back like any transfer — the old primary resized first,
 * incremental from the common snapshot, or a baseline when there is none.
 *
 * @public
 */
export async function runEvResync(cx: EvContext, wf: WorkflowContext, input: t.TypeOf<typeof EvResyncWorkflowInput>): Promise<{ snapshot: string; mode: 'incremental' | 'baseline' }> {
  const { source: oldPrimary, destination: newPrimary } = directionOf(cx.rel(input.id))
  await wf.step('snapshot', () => ensureSnapshot(cx, newPrimary, input.snapshot))
  const common = await wf.step('common', async () => {
    const found = commonSnapshot(await cx.volumes.listSnapshots(newPrimary), await cx.volumes.listSnapshots(oldPrimary))
    if (found === null) cx.events.emit('evMirror.commonSnapshotMissing', 'warning', { id: input.id })
    else cx.events.emit('evMirror.commonSnapshotFound', 'info', { id: input.id, snapshot: found })
    return found
  })
  const safety = await wf.step('safety', async () => (input.safetySnapshot ? ensureSnapshot(cx, oldPrimary, safetySnapshotName(input.id, input.epoch)) : null))
  await wf.step('restore', async () => {
    await setSideWritable(cx, oldPrimary, false)
    if (common === null) return null
    const entry = await snapshotNamed(cx, oldPrimary, common)
    if (entry === undefined) return null
    await cx.volumes.setReadRedirect({ site: oldPrimary.site, volume: oldPrimary.volume, snapshot: entry.id })
    const storage = cx.sites(oldPrimary.site).storage
    for (const m of entry.members) await callAdapter(storage.kind, 'restoreSnapshot', () => storage.restoreSnapshot(m.volume, m.snapshot, cx.token()))
    cx.events.emit('evMirror.restoredToCommon', 'warning', { id: input.id, site: oldPrimary.site, volume: oldPrimary.volume, snapshot: common, safetySnapshot: safety })
    return entry.id
  })
  await wf.step('reverse', async () => {
    const events = await cx.commit((state) => decideReversed(state, input.id, input.epoch, common, cx.clock.now()))
    if (events.length > 0) cx.events.emit('evMirror.reversed', 'info', { id: input.id, source: newPrimary, destination: oldPrimary, epoch: input.epoch })
    return null
  })
  await transferSteps(cx, wf, { id: input.id, snapshot: input.snapshot, sequence: input.sequence })
  const mode = common === null ? 'baseline' : 'incremental'
  cx.events.emit('evMirror.resynced', 'info', { id: input.id, snapshot: input.snapshot, mode })
  return { snapshot: input.snapshot, mode }
}
