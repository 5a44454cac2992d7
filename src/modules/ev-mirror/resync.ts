import * as t from 'io-ts'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { EvContext } from './context.js'
import { commonSnapshot, decideReversed } from './decide.js'
import { setSideWritable, snapshotNamed } from './side-ops.js'
import { directionOf, type EvSide } from './state.js'
import { transferSteps } from './transfer-steps.js'

/**
 * The workflow type of an expandable-volume resync.
 *
 * @public
 */
export const EV_RESYNC_WORKFLOW = 'evMirror.resync'

/**
 * The journaled input of a resync: the relationship, the snapshot to take on the new primary and transfer back,
 * whether a safety snapshot of the old primary is taken first, whether the loss of the old primary's later
 * writes is acknowledged, the epoch after reversal and the transfer's sequence number.
 *
 * @public
 */
export const EvResyncWorkflowInput = t.intersection([
  t.type({ id: t.string, snapshot: t.string, safetySnapshot: t.boolean, epoch: t.number, sequence: t.number }),
  t.partial({ acknowledgeDataLoss: t.boolean }),
])

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

/**
 * Refuses (`E_PRECONDITION`, changing nothing more) a resync that would discard writes the old primary made after
 * the common snapshot, unless their loss is acknowledged or a safety snapshot keeps them.
 *
 * @public
 */
export function refuseDataLoss(id: string, changes: { common: string | null; blocks: number }, consent: { acknowledgeDataLoss?: boolean; safetySnapshot?: boolean }): void {
  if (changes.blocks === 0 || consent.acknowledgeDataLoss === true || consent.safetySnapshot === true) return
  throw new DrError(
    'E_PRECONDITION',
    `resync of "${id}" would discard ${changes.blocks} blocks written on the old primary after ${changes.common ?? 'its creation'}; pass acknowledgeDataLoss: true or safetySnapshot: true`,
    { id, blocks: changes.blocks, common: changes.common },
  )
}

async function ensureSnapshot(cx: EvContext, side: EvSide, name: string): Promise<string> {
  if ((await snapshotNamed(cx, side, name)) === undefined) await cx.volumes.snapshot({ site: side.site, volume: side.volume, name })
  return name
}

/**
 * Resynchronises after a failover (RS.1–6): the old primary is made read-only first (storage level and replica
 * mark), so nothing is written to it from here on; the common snapshot of both catalogs is found; the optional
 * safety snapshot of the old primary is taken; the writes it would lose are checked again — now that they can no
 * longer change — and the resync stops unless they are acknowledged or kept; a consistency-group snapshot of the
 * new primary is taken; the old primary's readers are redirected to the common snapshot (or, with none, refused
 * until the baseline is complete) and its constituents restored to it; the relationship is reversed (epoch
 * raised); then the snapshot is transferred back like any transfer — the old primary resized first, incremental
 * from the common snapshot, or a baseline when there is none.
 *
 * @public
 */
export async function runEvResync(cx: EvContext, wf: WorkflowContext, input: t.TypeOf<typeof EvResyncWorkflowInput>): Promise<{ snapshot: string; mode: 'incremental' | 'baseline' }> {
  const { source: oldPrimary, destination: newPrimary } = directionOf(cx.rel(input.id))
  await wf.step('demote', async () => {
    await cx.volumes.setReplica({ site: oldPrimary.site, volume: oldPrimary.volume, replicaOf: input.id })
    await setSideWritable(cx, oldPrimary, false)
    return null
  })
  const common = await wf.step('common', async () => {
    const found = commonSnapshot(await cx.volumes.listSnapshots(newPrimary), await cx.volumes.listSnapshots(oldPrimary))
    if (found === null) cx.events.emit('evMirror.commonSnapshotNotFound', 'warning', { id: input.id })
    else cx.events.emit('evMirror.commonSnapshotFound', 'info', { id: input.id, snapshot: found })
    return found
  })
  const safety = await wf.step('safety', async () => (input.safetySnapshot ? ensureSnapshot(cx, oldPrimary, safetySnapshotName(input.id, input.epoch)) : null))
  await wf.step('check', async () => {
    const changes = await oldPrimaryChanges(cx, input.id)
    refuseDataLoss(input.id, changes, { safetySnapshot: input.safetySnapshot, ...(input.acknowledgeDataLoss === undefined ? {} : { acknowledgeDataLoss: input.acknowledgeDataLoss }) })
    return changes.blocks
  })
  await wf.step('snapshot', () => ensureSnapshot(cx, newPrimary, input.snapshot))
  await wf.step('restore', async () => {
    const ref = { site: oldPrimary.site, volume: oldPrimary.volume }
    const entry = common === null ? undefined : await snapshotNamed(cx, oldPrimary, common)
    await cx.volumes.setReadRedirect({ ...ref, snapshot: entry?.id ?? null })
    if (entry === undefined) return null
    const storage = cx.sites(oldPrimary.site).storage
    for (const m of entry.members) await callAdapter(storage.kind, 'restoreSnapshot', () => storage.restoreSnapshot(m.volume, m.snapshot, cx.token()))
    cx.events.emit('evMirror.restoredToCommon', 'warning', { id: input.id, site: oldPrimary.site, volume: oldPrimary.volume, snapshot: entry.name, safetySnapshot: safety })
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
