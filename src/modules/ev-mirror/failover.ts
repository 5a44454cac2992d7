import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { EvContext } from './context.js'
import { decideFailedOver } from './decide.js'
import { recordEpoch } from './epoch.js'
import { setSideWritable, snapshotNamed } from './side-ops.js'

/**
 * The workflow type of an expandable-volume failover.
 *
 * @public
 */
export const EV_FAILOVER_WORKFLOW = 'evMirror.failover'

/**
 * The journaled input of a failover: the relationship, the epoch it moves to, and whether to go on when the
 * source answers but cannot be made read-only.
 *
 * @public
 */
export const EvFailoverWorkflowInput = t.intersection([t.type({ id: t.string, epoch: t.number }), t.partial({ force: t.boolean })])

/**
 * What a failover did: the snapshot it presented read-write, the new epoch, and whether the source was made
 * read-only at the storage level (false when it could not be reached, or — forced — could not be changed).
 *
 * @public
 */
export type EvFailoverResult = {
  readonly presented: string
  readonly epoch: number
  readonly sourceReadOnly: boolean
}

/**
 * Presents the destination read-write at the newest snapshot complete on every constituent (seed 001 §3.8).
 * First the source: made read-only at the storage level when it answers (if it answers but refuses, the failover
 * stops and changes nothing unless forced), and in every case marked a replica — clients can no longer write it
 * through drkit, and its readers see the presented snapshot. Then every destination constituent — once no transfer
 * is being received into it — is stamped with the new epoch (transfers of the old one are refused from then on),
 * rolled back to its member snapshot, and made writable; the destination's read redirect and replica mark are lifted; the relationship is failed over. A source left
 * writable is reported (`evMirror.sourceLeftWritable`), never silent. A failure after the source step gives the
 * source back to its clients.
 *
 * @public
 */
export async function runEvFailover(cx: EvContext, wf: WorkflowContext, input: t.TypeOf<typeof EvFailoverWorkflowInput>): Promise<EvFailoverResult> {
  const { source, destination } = cx.sides(input.id)
  const sourceRef = { site: source.site, volume: source.volume }
  const demoted = await wf.step(
    'source',
    async () => {
      const network = cx.sites(destination.site).network
      const probe = await callAdapter(network.kind, 'probe', () => network.probe(source.site))
      const readOnly = probe.reachable && (await sourceReadOnly(cx, input))
      const name = cx.rel(input.id).lastTransferred?.name
      const restartPoint = name === undefined ? undefined : await snapshotNamed(cx, source, name)
      await cx.volumes.setReplica({ ...sourceRef, replicaOf: input.id })
      if (restartPoint?.valid === true) await cx.volumes.setReadRedirect({ ...sourceRef, snapshot: restartPoint.id })
      if (!readOnly) {
        cx.events.emit('evMirror.sourceLeftWritable', probe.reachable ? 'critical' : 'warning', { id: input.id, site: source.site, volume: source.volume, reason: probe.reachable ? 'readOnlyFailed' : 'unreachable' })
      }
      return { reachable: probe.reachable, readOnly }
    },
    {
      // A source serves its clients around no redirect: give it back as it was.
      compensate: async (done) => {
        await cx.volumes.setReadRedirect({ ...sourceRef, snapshot: null })
        await cx.volumes.setReplica({ ...sourceRef, replicaOf: null })
        // Best effort: a source that went away again stays read-only at the storage level, which is safe.
        if (done.readOnly) await setSideWritable(cx, source, true).catch(() => undefined)
      },
    },
  )
  const presented = await wf.step('present', async () => {
    const name = cx.rel(input.id).lastTransferred?.name
    const entry = name === undefined ? undefined : await snapshotNamed(cx, destination, name)
    if (entry === undefined || !entry.valid) throw new DrError('E_PRECONDITION', `mirror "${input.id}" has no complete snapshot at ${destination.site}`, { id: input.id })
    const storage = cx.sites(destination.site).storage
    const receiver = cx.receiverOf(destination.site)
    try {
      for (const m of entry.members) {
        await receiver.exclusive(m.volume, async () => {
          await recordEpoch(storage, m.volume, input.epoch, cx.token(), input.id)
          await callAdapter(storage.kind, 'restoreSnapshot', () => storage.restoreSnapshot(m.volume, m.snapshot, cx.token()))
        })
      }
      await setSideWritable(cx, destination, true)
    } catch (error) {
      await setSideWritable(cx, destination, false).catch(() => undefined)
      throw error
    }
    return entry.name
  })
  await wf.step('promote', async () => {
    await cx.volumes.setReadRedirect({ site: destination.site, volume: destination.volume, snapshot: null })
    await cx.volumes.setReplica({ site: destination.site, volume: destination.volume, replicaOf: null })
    return null
  })
  await wf.step('record', async () => {
    await cx.commit((state) => decideFailedOver(state, input.id, input.epoch, cx.clock.now()))
    cx.events.emit('evMirror.failedOver', 'warning', { id: input.id, site: destination.site, volume: destination.volume, presented, epoch: input.epoch, sourceReadOnly: demoted.readOnly })
    return null
  })
  return { presented, epoch: input.epoch, sourceReadOnly: demoted.readOnly }
}

/**
 * Makes a source that answers read-only. When it refuses: forced, the failover goes on (false); otherwise the
 * constituents already changed are made writable again and the failover stops with `E_PRECONDITION`.
 */
async function sourceReadOnly(cx: EvContext, input: t.TypeOf<typeof EvFailoverWorkflowInput>): Promise<boolean> {
  const { source } = cx.sides(input.id)
  try {
    await setSideWritable(cx, source, false)
    return true
  } catch (error) {
    if (input.force === true) return false
    const cause = toDrError(error)
    await setSideWritable(cx, source, true).catch(() => undefined)
    throw new DrError(
      'E_PRECONDITION',
      `failover of "${input.id}": ${source.site} answers but "${source.volume}" could not be made read-only (${cause.code}: ${cause.message}); nothing changed — retry, or pass force: true to fail over leaving it writable`,
      { id: input.id, site: source.site, volume: source.volume, cause: cause.code },
    )
  }
}
