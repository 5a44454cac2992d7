import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { decideHealth, decideSeriesTaken } from './decide.js'
import { groupAttachment } from './definition.js'

/**
 * The workflow type of a DR series snapshot.
 *
 * @public
 */
export const GROUP_SNAPSHOT_WORKFLOW = 'serverGroup.snapshot'

/**
 * The journaled input of a DR series snapshot: the group, the snapshot name and why it is taken.
 *
 * @public
 */
export const GroupSnapshotWorkflowInput = t.type({ name: t.string, snapshot: t.string, reason: t.string })

/** A member busy with another snapshot or transfer (a scheduled one) is waited for: the series step is retried. */
const BUSY_RETRY: RetryPolicy = { attempts: 40, initialDelayMs: 25, maxDelayMs: 500, retryOn: (error) => error.code === 'E_CONFLICT' }

/** Freezes or thaws the I/O actors listed. */
async function setFrozen(cx: GroupContext, site: string, actors: readonly string[], frozen: boolean): Promise<void> {
  const host = cx.deps.sites(site).host
  for (const actor of actors) {
    if (frozen) await callAdapter(host.kind, 'freezeActor', () => host.freezeActor(actor, cx.deps.token()))
    else await callAdapter(host.kind, 'thawActor', () => host.thawActor(actor, cx.deps.token()))
  }
}

/**
 * Takes one group-consistent snapshot of the DR series (A26): the I/O actors of the group's volumes at the active
 * site are suspended while a consistency-group snapshot of every member volume is taken, then resumed; the
 * snapshots are transferred as ordinary updates (replication never stops), each carrying the group's definition
 * (so the DR site holds the group's configuration on its own storage, with its data), and once every one is
 * integrated at the DR site the series records them, each stamped with its transfer sequence number. A member
 * busy with another transfer is waited for; a member whose transfer fails is marked out of sync.
 *
 * @public
 */
export async function runGroupSnapshot(cx: GroupContext, wf: WorkflowContext, input: t.TypeOf<typeof GroupSnapshotWorkflowInput>): Promise<{ snapshot: string; members: Array<{ id: string; snapshot: string; sequence: number }> }> {
  const group = cx.group(input.name)
  const site = group.active
  const sources = await Promise.all(group.members.map(async (id) => ({ id, source: (await cx.deps.evMirrors.get({ id })).source })))
  const actors = await wf.step(
    'quiesce',
    async () => {
      const host = cx.deps.sites(site).host
      const ids = new Set<string>()
      for (const { source } of sources) for (const actor of await callAdapter(host.kind, 'listActors', () => host.listActors(source.volume))) ids.add(actor.id)
      await setFrozen(cx, site, [...ids], true)
      return [...ids].sort()
    },
    { compensate: (frozen) => setFrozen(cx, site, frozen, false) },
  )
  await wf.step('snapshots', async () => {
    for (const { source } of sources) {
      const exists = (await cx.deps.volumes.listSnapshots({ site: source.site, volume: source.volume })).some((s) => s.name === input.snapshot)
      if (!exists) await cx.deps.volumes.snapshot({ site: source.site, volume: source.volume, name: input.snapshot })
    }
    return null
  }, { retry: BUSY_RETRY })
  await wf.step('thaw', async () => {
    await setFrozen(cx, site, actors, false)
    return null
  })
  const members = await wf.step('transfer', async () => {
    const attachment = groupAttachment(group)
    const outcomes = await Promise.allSettled(group.members.map((id) => cx.deps.evMirrors.transfer({ id, snapshot: input.snapshot, attachment })))
    const crash = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && isInterruption(o.reason))
    if (crash !== undefined) throw crash.reason
    const failed: string[] = []
    const busy: string[] = []
    outcomes.forEach((outcome, i) => {
      const id = group.members[i] ?? ''
      if (outcome.status === 'fulfilled') return
      const error = toDrError(outcome.reason)
      if (error.code === 'E_CONFLICT') {
        busy.push(id)
        return
      }
      failed.push(id)
      cx.deps.events.emit('serverGroup.memberMarkedOutOfSync', 'error', { name: input.name, member: id, code: error.code, message: error.message })
    })
    const still = cx.group(input.name).outOfSync.filter((id) => !group.members.includes(id) || failed.includes(id))
    await cx.commit((state) => decideHealth(state, input.name, [...new Set([...still, ...failed])]))
    if (failed.length > 0) throw new DrError('E_UNAVAILABLE', `series snapshot "${input.snapshot}" of "${input.name}": members ${failed.join(', ')} did not transfer`, { name: input.name, failed })
    if (busy.length > 0) throw new DrError('E_CONFLICT', `series snapshot "${input.snapshot}" of "${input.name}": members ${busy.join(', ')} are transferring; waiting`, { name: input.name, busy })
    return Promise.all(group.members.map(async (id) => ({ id, snapshot: input.snapshot, sequence: (await cx.deps.evMirrors.get({ id })).lastTransferred?.sequence ?? 0 })))
  }, { retry: BUSY_RETRY })
  await wf.step('record', async () => {
    await cx.commit((state) => decideSeriesTaken(state, input.name, { name: input.snapshot, at: cx.deps.clock.now(), reason: input.reason, members }))
    cx.deps.events.emit('serverGroup.seriesSnapshotTaken', 'info', { name: input.name, snapshot: input.snapshot, reason: input.reason, members })
    return null
  })
  return { snapshot: input.snapshot, members }
}
