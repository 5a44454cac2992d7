import * as t from 'io-ts'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { Coordinator } from './coordinator.js'
import { decideReversed } from './decide.js'
import { pastPointOfNoReturn } from './failover.js'
import { deltaSetSnapshot } from './naming.js'
import { otherSide, sideOf, type Relationship } from './state.js'

/** Workflow type of a failback or planned swap. */
export const REVERSE_WORKFLOW = 'mirror.reverse'

/**
 * Input of the reverse workflow (failback and swap).
 *
 * @public
 */
export const ReverseWorkflowInput = t.type({
  id: t.string,
  kind: t.union([t.literal('failback'), t.literal('swap')]),
  fromEpoch: t.number,
  toEpoch: t.number,
  timeoutMs: t.number,
  finishOnly: t.boolean,
  finalDeltaSet: t.union([t.number, t.null]),
})

/**
 * The failback / planned-swap workflow: converge to within one chunk, make the primary read-only, cut and drain a
 * last delta set (both sides now hold the same `ds-n`), stop both sides, then — past the point of no return —
 * attach the reverse direction at epoch + 1 from that common snapshot (no full copy, replication not restarted
 * from scratch) and make the other side writable. At no instant are both sides writable, and a failure before
 * the point of no return makes the old primary writable again and resumes replication, so the call can simply
 * be re-issued; a failure after it leaves the operation to be finished by re-issuing it.
 */
export async function runReverse(co: Coordinator, wf: WorkflowContext, input: t.TypeOf<typeof ReverseWorkflowInput>): Promise<Json> {
  const rel = co.rel(input.id)
  const primary = sideOf(rel, rel.primary)
  const other = sideOf(rel, otherSide(rel.primary))
  let final = input.finalDeltaSet
  if (!input.finishOnly) {
    await wf.step('probe', async () => {
      if (!(await co.reachable(primary.site, other.site))) {
        throw new DrError('E_UNAVAILABLE', `${input.kind} of mirror "${rel.id}": site ${other.site} cannot be reached`, { id: rel.id, site: other.site })
      }
      return null
    })
    await wf.step('converge', async (s) => co.converge(rel, input.timeoutMs, s.signal))
    await wf.step(
      'primary-read-only',
      async () => {
        await co.setWritable(primary, false)
        return null
      },
      {
        compensate: async () => {
          const storage = co.storage(other.site)
          const info = await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(other.volume))
          if (!info.writable) await co.setWritable(primary, true)
        },
      },
    )
    final = await wf.step('final-cut', async () => (await co.source(rel)).cutNow('final'))
    const last = final
    await wf.step('drain', async (s) => {
      const destination = await co.destination(rel)
      await co.within((signal) => destination.drainTo(last, signal), input.timeoutMs, s.signal, `drain of mirror "${rel.id}"`)
      return null
    })
    await wf.step(
      'detach',
      async () => {
        await (await co.agent(primary.site)).detach(rel.id, primary.volume)
        await (await co.agent(other.site)).detach(rel.id, other.volume)
        return null
      },
      { compensate: async () => co.attach(rel, input.fromEpoch, { source: null, destination: null }) },
    )
  }
  if (final === null) throw new DrError('E_INTERNAL', `${input.kind} of mirror "${rel.id}" has no final delta set to finish from`, { id: rel.id })
  try {
    return await finish(co, wf, rel, input, final)
  } catch (error) {
    if (isInterruption(error)) throw error
    throw pastPointOfNoReturn(error, input.toEpoch, final)
  }
}

async function finish(co: Coordinator, wf: WorkflowContext, rel: Relationship, input: t.TypeOf<typeof ReverseWorkflowInput>, final: number): Promise<Json> {
  const newPrimary = otherSide(rel.primary)
  const reversed: Relationship = { ...rel, primary: newPrimary }
  const target = sideOf(rel, newPrimary)
  await wf.step('reverse', async () => {
    const base = { n: final, snapshot: deltaSetSnapshot(rel.id, final) }
    await co.attach(reversed, input.toEpoch, { source: base, destination: base })
    return null
  })
  await wf.step(
    'promote',
    async () => {
      await co.setWritable(target, true)
      return null
    },
    { retry: { attempts: 5, initialDelayMs: 200 } },
  )
  await wf.step('commit', async () => {
    const decided = await co.commit((state) => decideReversed(state, rel.id, input.toEpoch, newPrimary, co.deps.clock.now()))
    if (decided.length > 0) {
      co.deps.events.emit('mirror.failedBack', 'info', { id: rel.id, kind: input.kind, primary: target, epoch: input.toEpoch, finalDeltaSet: final })
    }
    return null
  })
  return { primary: newPrimary, epoch: input.toEpoch, finalDeltaSet: final }
}
