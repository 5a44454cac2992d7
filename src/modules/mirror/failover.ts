import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { Coordinator } from './coordinator.js'
import { decideFailedOver } from './decide.js'
import { MIRROR_LABEL, parseDeltaSetSnapshot, restartPointHold, restartPointSnapshot } from './naming.js'
import { otherSide, sideOf, type Relationship, type RestartPoint } from './state.js'

/** Workflow type of a failover. */
export const FAILOVER_WORKFLOW = 'mirror.failover'

/**
 * Input of the failover workflow: the relationship, the mode, the epoch it raises to, the drain timeout, and
 * whether only the steps past the point of no return remain (a re-issued failover that failed there).
 *
 * @public
 */
export const FailoverWorkflowInput = t.type({
  id: t.string,
  mode: t.union([t.literal('sync'), t.literal('default'), t.literal('now')]),
  toEpoch: t.number,
  timeoutMs: t.number,
  finishOnly: t.boolean,
})

/** Marks an error raised past the point of no return so the facade keeps the operation resumable. */
export function pastPointOfNoReturn(error: unknown, toEpoch: number, finalDeltaSet: number | null): DrError {
  const failure = toDrError(error)
  return new DrError(failure.code, failure.message, { ...failure.details, resume: { toEpoch, finalDeltaSet } }, { cause: failure })
}

/**
 * The failover workflow. `sync`: the source must answer; converge, make it read-only, cut a last delta set and
 * drain it (zero loss). `default`: make the source read-only if it can be reached (warning otherwise) and play
 * back every delta set completely received. `now`: play back nothing more. Then, past the point of no return:
 * raise the destination's epoch (older senders are refused), stop the old source if reachable, drop what was
 * not played, take the held restart-point snapshot stamped with the last delta set applied, make the
 * destination writable, and record the new primary. Every step is idempotent, so a crash anywhere resumes.
 */
export async function runFailover(co: Coordinator, wf: WorkflowContext, input: t.TypeOf<typeof FailoverWorkflowInput>): Promise<Json> {
  const rel = co.rel(input.id)
  const src = sideOf(rel, rel.primary)
  const dst = sideOf(rel, otherSide(rel.primary))
  const reachable = await wf.step('probe-source', async () => co.reachable(dst.site, src.site))
  if (!input.finishOnly) {
    if (input.mode === 'sync' && !reachable) {
      throw new DrError('E_UNAVAILABLE', `failover with sync of mirror "${rel.id}": source site ${src.site} cannot be reached`, { id: rel.id, site: src.site })
    }
    await wf.step('check-destination', async () => {
      const played = (await co.destination(rel)).played
      if (played === null) {
        throw new DrError('E_PRECONDITION', `mirror "${rel.id}": the initial copy to ${dst.site} is not complete; there is nothing consistent to fail over to`, { id: rel.id })
      }
      return played
    })
    if (input.mode === 'sync') await syncToSource(co, wf, rel, input.timeoutMs)
    else await bestEffortReadOnly(co, wf, rel, reachable)
  }
  try {
    return await finish(co, wf, rel, input, reachable)
  } catch (error) {
    if (isInterruption(error)) throw error
    throw pastPointOfNoReturn(error, input.toEpoch, null)
  }
}

async function syncToSource(co: Coordinator, wf: WorkflowContext, rel: Relationship, timeoutMs: number): Promise<void> {
  const src = sideOf(rel, rel.primary)
  await wf.step('converge', async (s) => co.converge(rel, timeoutMs, s.signal))
  await wf.step(
    'source-read-only',
    async () => {
      await co.setWritable(src, false)
      return null
    },
    { compensate: async () => co.setWritable(src, true) },
  )
  const final = await wf.step('final-cut', async () => (await co.source(rel)).cutNow('final'))
  await wf.step('drain', async (s) => {
    const destination = await co.destination(rel)
    await co.within((signal) => destination.drainTo(final, signal), timeoutMs, s.signal, `drain of mirror "${rel.id}"`)
    return final
  })
}

async function bestEffortReadOnly(co: Coordinator, wf: WorkflowContext, rel: Relationship, reachable: boolean): Promise<void> {
  const src = sideOf(rel, rel.primary)
  await wf.step('source-read-only', async () => {
    const warn = (code: string, message: string): boolean => {
      co.deps.events.emit('mirror.sourceReadOnlyFailed', 'warning', { id: rel.id, site: src.site, volume: src.volume, code, message })
      return false
    }
    if (!reachable) return warn('E_UNAVAILABLE', `site ${src.site} cannot be reached`)
    try {
      await co.setWritable(src, false)
      return true
    } catch (error) {
      const failure = toDrError(error)
      return warn(failure.code, failure.message)
    }
  })
}

async function finish(co: Coordinator, wf: WorkflowContext, rel: Relationship, input: t.TypeOf<typeof FailoverWorkflowInput>, reachable: boolean): Promise<Json> {
  const src = sideOf(rel, rel.primary)
  const dstSide = otherSide(rel.primary)
  const dst = sideOf(rel, dstSide)
  await wf.step('fence-destination', async () => {
    const agent = await co.agent(dst.site)
    await agent.recover(rel.id, dst.volume)
    await agent.destination(rel.id)?.fence(input.toEpoch)
    return null
  })
  await wf.step('stop-source', async () => {
    if (!reachable) return false
    try {
      await (await co.agent(src.site)).detach(rel.id)
      return true
    } catch {
      return false
    }
  })
  await wf.step('play-received', async () => {
    const destination = (await co.agent(dst.site)).destination(rel.id)
    if (destination === undefined || input.mode === 'now') return destination?.played ?? null
    return destination.playAll()
  })
  await wf.step('promote', async () => {
    await (await co.agent(dst.site)).promote(rel.id, dst.volume, input.toEpoch)
    return null
  })
  const restartPoint = await wf.step('restart-point', async () => takeRestartPoint(co, rel, input))
  await wf.step('destination-writable', async () => {
    await co.setWritable(dst, true)
    return null
  })
  await wf.step('commit', async () => {
    const point: RestartPoint = { side: dstSide, snapshot: restartPoint.snapshot, lastApplied: restartPoint.lastApplied, epoch: input.toEpoch, mode: input.mode }
    const decided = await co.commit((state) => decideFailedOver(state, rel.id, input.toEpoch, dstSide, point, co.deps.clock.now()))
    if (decided.length > 0) {
      co.deps.events.emit('mirror.failedOver', 'warning', {
        id: rel.id,
        mode: input.mode,
        restartPoint: { site: dst.site, volume: dst.volume, snapshot: restartPoint.snapshot },
        lastApplied: restartPoint.lastApplied,
        epoch: input.toEpoch,
      })
    }
    return null
  })
  return { restartPoint: restartPoint.snapshot, lastApplied: restartPoint.lastApplied, epoch: input.toEpoch }
}

/** Takes (or finds) the held restart-point snapshot of the promoted side, stamped with the last delta set applied. */
async function takeRestartPoint(co: Coordinator, rel: Relationship, input: t.TypeOf<typeof FailoverWorkflowInput>): Promise<{ snapshot: string; lastApplied: number | null }> {
  const dst = sideOf(rel, otherSide(rel.primary))
  const storage = co.storage(dst.site)
  const call = <R>(operation: string, run: () => Promise<R>): Promise<R> => callAdapter(storage.kind, operation, run)
  const snapshots = await call('listSnapshots', () => storage.listSnapshots(dst.volume))
  const name = restartPointSnapshot(rel.id, input.toEpoch)
  const existing = snapshots.find((s) => s.name === name)
  let lastApplied: number | null
  if (existing !== undefined) {
    const stamp = existing.labels[MIRROR_LABEL.lastApplied] ?? ''
    lastApplied = stamp === '' ? null : Number(stamp)
  } else {
    const applied = snapshots.map((s) => parseDeltaSetSnapshot(rel.id, s.name)).filter((n): n is number => n !== undefined)
    lastApplied = applied.length === 0 ? null : Math.max(...applied)
    const labels = {
      [MIRROR_LABEL.session]: rel.id,
      [MIRROR_LABEL.kind]: 'restart-point',
      [MIRROR_LABEL.lastApplied]: lastApplied === null ? '' : String(lastApplied),
      [MIRROR_LABEL.epoch]: String(input.toEpoch),
      [MIRROR_LABEL.mode]: input.mode,
    }
    await call('createSnapshot', () => storage.createSnapshot(dst.volume, name, co.deps.token(), labels))
  }
  await call('holdSnapshot', () => storage.holdSnapshot(dst.volume, name, restartPointHold(rel.id), co.deps.token()))
  return { snapshot: name, lastApplied }
}
