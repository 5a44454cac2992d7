import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { Coordinator } from './coordinator.js'
import { decideResynced } from './decide.js'
import { clearUndoProgress } from './fetch.js'
import { MIRROR_LABEL, baseHold, deltaSetSnapshot, restartPointHold, safetyHold, undoSnapshot } from './naming.js'
import { otherSide, sideOf, type Relationship } from './state.js'

/** Workflow type of a resync. */
export const RESYNC_WORKFLOW = 'mirror.resync'

/**
 * Input of the resync workflow.
 *
 * @public
 */
export const ResyncWorkflowInput = t.type({ id: t.string, acknowledgeDataLoss: t.boolean, safetySnapshot: t.boolean, timeoutMs: t.number })

/**
 * What the old source changed after the restart point, found from its own snapshots: the common delta-set
 * snapshot `ds-r` (null when it is gone and the undo information is lost) and the number of blocks changed
 * since (on the live volume).
 *
 * @public
 */
export async function undoScope(co: Coordinator, rel: Relationship): Promise<{ base: string | null; changedBlocks: number }> {
  const old = sideOf(rel, otherSide(rel.primary))
  const r = rel.restartPoint?.lastApplied ?? null
  if (r === null) return { base: null, changedBlocks: 0 }
  const storage = co.storage(old.site)
  const name = deltaSetSnapshot(rel.id, r)
  const info = await callAdapter(storage.kind, 'snapshotInfo', () => storage.snapshotInfo(old.volume, name)).catch((error: unknown) => {
    if (isDrError(error, 'E_NOT_FOUND')) return undefined
    throw error
  })
  if (info === undefined || info.labels[MIRROR_LABEL.session] !== rel.id) return { base: null, changedBlocks: 0 }
  const changed = await callAdapter(storage.kind, 'changedBlocks', () => storage.changedBlocks(old.volume, name, 'live'))
  return { base: name, changedBlocks: changed.blocks.length }
}

/**
 * The resync workflow: brings the old source back as the destination of the new primary without a full copy
 * when it can. It fences the old source (stops its stale session, read-only), finds the common delta set `r` the
 * restart point is stamped with, snapshots the old source (the undo plan; kept and held as a safety snapshot
 * when asked), fetches over the network the restart point's values of every block the old source changed after
 * `r` — its unsent delta sets, its open one and any write made after the failover — and writes them back
 * (undo). Then reverse replication starts from the restart point: the first delta set the new primary cuts
 * (the intermediate point) carries exactly the restart-point → intermediate differential. When `ds-r` is gone,
 * `mirror.fullCopyRequired` is emitted and the new primary is copied in full instead. The workflow ends once the
 * old source has played the intermediate point back; the restart point is then released and deleted.
 */
export async function runResync(co: Coordinator, wf: WorkflowContext, input: t.TypeOf<typeof ResyncWorkflowInput>): Promise<Json> {
  const rel = co.rel(input.id)
  const primary = sideOf(rel, rel.primary)
  const old = sideOf(rel, otherSide(rel.primary))
  const rp = rel.restartPoint
  if (rp === null) throw new DrError('E_PRECONDITION', `mirror "${rel.id}" has no restart point`, { id: rel.id })
  await wf.step('probe-old-source', async () => {
    if (!(await co.reachable(primary.site, old.site))) {
      throw new DrError('E_UNAVAILABLE', `resync of mirror "${rel.id}": site ${old.site} cannot be reached`, { id: rel.id, site: old.site })
    }
    return null
  })
  await wf.step('fence-old-source', async () => {
    await (await co.agent(old.site)).detach(rel.id, old.volume)
    await co.setWritable(old, false)
    return null
  })
  const located = await wf.step('locate-base', async () => {
    const scope = await undoScope(co, rel)
    const mode = scope.base === null ? ('full' as const) : ('undo' as const)
    if (mode === 'full') {
      co.deps.events.emit('mirror.fullCopyRequired', 'warning', {
        id: rel.id,
        site: old.site,
        volume: old.volume,
        reason: rp.lastApplied === null ? 'the restart point holds no delta set' : `delta set ${rp.lastApplied} is no longer on ${old.site}/${old.volume}; its undo information is lost`,
      })
    } else if (scope.changedBlocks > 0 && !input.acknowledgeDataLoss && !input.safetySnapshot) {
      throw new DrError('E_PRECONDITION', `resync of mirror "${rel.id}" would undo ${scope.changedBlocks} blocks written on ${old.site}/${old.volume}; pass acknowledgeDataLoss or safetySnapshot`, { id: rel.id, blocks: scope.changedBlocks })
    }
    co.deps.events.emit('mirror.resyncStarted', 'info', { id: rel.id, mode, lastApplied: rp.lastApplied, epoch: rel.epoch })
    return { mode, r: rp.lastApplied }
  })
  const plan = undoSnapshot(rel.id, rel.epoch)
  const oldStorage = co.storage(old.site)
  const call = <R>(operation: string, run: () => Promise<R>): Promise<R> => callAdapter(oldStorage.kind, operation, run)
  await wf.step('plan-undo', async () => {
    const exists = (await call('listSnapshots', () => oldStorage.listSnapshots(old.volume))).some((s) => s.name === plan)
    if (!exists) await call('createSnapshot', () => oldStorage.createSnapshot(old.volume, plan, co.deps.token(), { [MIRROR_LABEL.session]: rel.id, [MIRROR_LABEL.kind]: 'undo' }))
    if (input.safetySnapshot) await call('holdSnapshot', () => oldStorage.holdSnapshot(old.volume, plan, safetyHold(rel.id), co.deps.token()))
    return null
  })
  const undone = await wf.step('undo', async () => {
    if (located.mode === 'full' || located.r === null) return 0
    return (await co.agent(old.site)).undo({ session: rel.id, volume: old.volume, epoch: rel.epoch, peerSite: primary.site, snapshot: rp.snapshot, from: deltaSetSnapshot(rel.id, located.r), to: plan })
  })
  if (located.mode === 'undo' && located.r !== null) {
    const r = located.r
    await wf.step('rebase-old-source', async () => {
      await rebase(co, rel, r)
      return null
    })
  }
  const intermediate = await wf.step('reverse', async () => {
    const r = located.r
    const source = r === null ? null : { n: r, snapshot: rp.snapshot }
    const bases = located.mode === 'undo' && r !== null ? { source, destination: { n: r, snapshot: deltaSetSnapshot(rel.id, r) } } : { source, destination: null }
    await co.attach(rel, rel.epoch, bases)
    return (await co.source(rel)).cuts.last?.n ?? (await co.source(rel)).cutNow('manual')
  })
  await wf.step('await-intermediate', async (s) => {
    const destination = await co.destination(rel)
    await co.within((signal) => destination.drainTo(intermediate, signal), input.timeoutMs, s.signal, `resync of mirror "${rel.id}"`)
    return null
  })
  await wf.step('cleanup', async () => {
    const storage = co.storage(primary.site)
    await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(primary.volume, rp.snapshot, restartPointHold(rel.id), co.deps.token())).catch(ignoreMissing)
    await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(primary.volume, rp.snapshot, co.deps.token())).catch(ignoreMissing)
    if (!input.safetySnapshot) await call('deleteSnapshot', () => oldStorage.deleteSnapshot(old.volume, plan, co.deps.token())).catch(ignoreMissing)
    await clearUndoProgress((await co.agent(old.site)).context, old.volume)
    return null
  })
  await wf.step('commit', async () => {
    const decided = await co.commit((state) => decideResynced(state, rel.id, co.deps.clock.now()))
    if (decided.length > 0) {
      co.deps.events.emit('mirror.resynced', 'info', { id: rel.id, mode: located.mode, undoneBlocks: undone, epoch: rel.epoch, safetySnapshot: input.safetySnapshot ? plan : null })
    }
    return null
  })
  return { mode: located.mode, undoneBlocks: undone, intermediate }
}

/**
 * Replaces the old source's `ds-r` (its old cut, the base of the undo plan) by a snapshot of the undone volume:
 * same contents as the restart point, so the replica starts from a clean base.
 */
async function rebase(co: Coordinator, rel: Relationship, r: number): Promise<void> {
  const old = sideOf(rel, otherSide(rel.primary))
  const storage = co.storage(old.site)
  const call = <R>(operation: string, run: () => Promise<R>): Promise<R> => callAdapter(storage.kind, operation, run)
  const name = deltaSetSnapshot(rel.id, r)
  const current = await call('snapshotInfo', () => storage.snapshotInfo(old.volume, name)).catch((error: unknown) => {
    if (isDrError(error, 'E_NOT_FOUND')) return undefined
    throw error
  })
  if (current !== undefined && current.labels[MIRROR_LABEL.kind] === 'undone' && current.labels[MIRROR_LABEL.epoch] === String(rel.epoch)) return
  if (current !== undefined) {
    if (current.holds.includes(baseHold(rel.id))) await call('releaseSnapshot', () => storage.releaseSnapshot(old.volume, name, baseHold(rel.id), co.deps.token()))
    await call('deleteSnapshot', () => storage.deleteSnapshot(old.volume, name, co.deps.token()))
  }
  const labels = { [MIRROR_LABEL.session]: rel.id, [MIRROR_LABEL.deltaSet]: String(r), [MIRROR_LABEL.epoch]: String(rel.epoch), [MIRROR_LABEL.kind]: 'undone' }
  await call('createSnapshot', () => storage.createSnapshot(old.volume, name, co.deps.token(), labels))
}

function ignoreMissing(error: unknown): void {
  if (!isDrError(error, 'E_NOT_FOUND') && !isDrError(error, 'E_PRECONDITION')) throw error
}
