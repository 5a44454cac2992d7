import * as t from 'io-ts'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { EvContext } from './context.js'
import { decideFailedOver } from './decide.js'
import { EPOCH_KEY } from './receiver.js'
import { setSideWritable, snapshotNamed } from './transfer-steps.js'

/**
 * The workflow type of an expandable-volume failover.
 *
 * @public
 */
export const EV_FAILOVER_WORKFLOW = 'evMirror.failover'

/**
 * The journaled input of a failover: the relationship and the epoch it moves to.
 *
 * @public
 */
export const EvFailoverWorkflowInput = t.type({ id: t.string, epoch: t.number })

/**
 * Presents the destination read-write at the newest snapshot complete on every constituent: the source is made
 * read-only first when it can be reached (never both sides writable), every destination constituent is rolled
 * back to its member snapshot and made writable, the read redirect is lifted (the active file system now is that
 * snapshot), the new epoch is recorded on every constituent (so transfers of the old epoch are refused), and the
 * relationship is failed over.
 *
 * @public
 */
export async function runEvFailover(cx: EvContext, wf: WorkflowContext, input: t.TypeOf<typeof EvFailoverWorkflowInput>): Promise<{ presented: string; epoch: number }> {
  const { source, destination } = cx.sides(input.id)
  await wf.step('source', async () => {
    const network = cx.sites(destination.site).network
    const probe = await callAdapter(network.kind, 'probe', () => network.probe(source.site))
    if (!probe.reachable) return false
    return setSideWritable(cx, source, false).then(
      () => true,
      () => false,
    )
  })
  const presented = await wf.step('present', async () => {
    const name = cx.rel(input.id).lastTransferred?.name
    const entry = name === undefined ? undefined : await snapshotNamed(cx, destination, name)
    if (entry === undefined || !entry.valid) throw new DrError('E_PRECONDITION', `mirror "${input.id}" has no complete snapshot at ${destination.site}`, { id: input.id })
    const storage = cx.sites(destination.site).storage
    for (const m of entry.members) {
      await callAdapter(storage.kind, 'restoreSnapshot', () => storage.restoreSnapshot(m.volume, m.snapshot, cx.token()))
      await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(m.volume, EPOCH_KEY, { epoch: input.epoch }, cx.token()))
    }
    await setSideWritable(cx, destination, true)
    return entry.name
  })
  await wf.step('redirect', async () => {
    await cx.volumes.setReadRedirect({ site: destination.site, volume: destination.volume, snapshot: null })
    return null
  })
  await wf.step('record', async () => {
    await cx.commit((state) => decideFailedOver(state, input.id, input.epoch, cx.clock.now()))
    cx.events.emit('evMirror.failedOver', 'warning', { id: input.id, site: destination.site, volume: destination.volume, presented, epoch: input.epoch })
    return null
  })
  return { presented, epoch: input.epoch }
}
