import * as t from 'io-ts'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { decideFailedOver, decideReserve } from './decide.js'
import { loadAt, unloadAt } from './identity.js'

/**
 * The workflow type of a server-group failover.
 *
 * @public
 */
export const GROUP_FAILOVER_WORKFLOW = 'serverGroup.failover'

/**
 * The journaled input of a group failover: the group, where it goes, whether it was forced, and the interfaces
 * and mount paths prevalidation found available there.
 *
 * @public
 */
export const GroupFailoverWorkflowInput = t.type({ name: t.string, from: t.string, target: t.string, forced: t.boolean, interfaces: t.array(t.string), mounts: t.array(t.string) })

/**
 * Fails a server group over (A21/A22): reserves what prevalidation found at the target, fails every member
 * relationship over in parallel, loads the group at the target only once every member is writable there
 * (mounts, addresses, name records), unloads it at the source when the source can be reached, and records it.
 *
 * @public
 */
export async function runGroupFailover(cx: GroupContext, wf: WorkflowContext, input: t.TypeOf<typeof GroupFailoverWorkflowInput>): Promise<{ site: string; forced: boolean; members: string[]; warnings: string[] }> {
  const group = cx.group(input.name)
  await wf.step(
    'reserve',
    async () => {
      const reservation = { site: input.target, interfaces: input.interfaces, mounts: input.mounts, forced: input.forced, reason: 'failover' as const, at: cx.deps.clock.now() }
      await cx.commit((state) => decideReserve(state, input.name, reservation))
      cx.deps.events.emit('serverGroup.reserved', 'info', { name: input.name, site: input.target, interfaces: input.interfaces, mounts: input.mounts, forced: input.forced })
      return null
    },
    { compensate: async () => void (await cx.commit((state) => decideReserve(state, input.name, null))) },
  )
  const members = await wf.step('members', async () => {
    await Promise.all(
      group.members.map(async (id) => {
        const rel = await cx.deps.evMirrors.get({ id })
        if (rel.state !== 'failedOver' || rel.operation?.kind === 'failover') await cx.deps.evMirrors.failover({ id })
      }),
    )
    return group.members
  })
  const warnings = await wf.step('load', async () => {
    for (const id of group.members) {
      const rel = await cx.deps.evMirrors.get({ id })
      if (rel.state !== 'failedOver' || rel.destination.site !== input.target) {
        throw new DrError('E_PRECONDITION', `member ${id} of server group "${input.name}" is not writable at ${input.target}`, { name: input.name, member: id })
      }
    }
    const loaded = await loadAt(cx, group, input.target, { interfaces: input.interfaces, mounts: input.mounts })
    cx.deps.events.emit('serverGroup.loaded', 'info', { name: input.name, site: input.target, warnings: loaded })
    return loaded
  })
  await wf.step('unload', async () => {
    const network = cx.deps.sites(input.target).network
    const probe = await callAdapter(network.kind, 'probe', () => network.probe(input.from))
    if (!probe.reachable) {
      cx.deps.events.emit('serverGroup.unloadDeferred', 'warning', { name: input.name, site: input.from, reason: 'unreachable' })
      return false
    }
    await unloadAt(cx, group, input.from, true)
    cx.deps.events.emit('serverGroup.unloaded', 'info', { name: input.name, site: input.from })
    return true
  })
  await wf.step('record', async () => {
    await cx.commit((state) => decideFailedOver(state, input.name, input.target, input.forced))
    cx.deps.events.emit('serverGroup.failedOver', 'warning', { name: input.name, from: input.from, to: input.target, forced: input.forced, members })
    return null
  })
  return { site: input.target, forced: input.forced, members, warnings }
}
