import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { decideFailedOver, decidePartialFailover, decideReserve, decideUnloadDeferred } from './decide.js'
import { loadAt, unloadAt } from './identity.js'

/**
 * The workflow type of a server-group failover.
 *
 * @public
 */
export const GROUP_FAILOVER_WORKFLOW = 'serverGroup.failover'

/**
 * The journaled input of a group failover: the group, where it goes, whether it was forced, and the interfaces,
 * mount paths and name records prevalidation found available there.
 *
 * @public
 */
export const GroupFailoverWorkflowInput = t.intersection([
  t.type({ name: t.string, from: t.string, target: t.string, forced: t.boolean, interfaces: t.array(t.string), mounts: t.array(t.string) }),
  t.partial({ nameRecords: t.array(t.string) }),
])

type Input = t.TypeOf<typeof GroupFailoverWorkflowInput>

/**
 * Fails a server group over (A21/A22): reserves what prevalidation found at the target — decided against the
 * journal as it is now, so two groups never both reserve an interface or a volume —, fails every member
 * relationship over in parallel, loads the group at the target only once every member is writable there (mounts,
 * addresses, name records), unloads it at the source when the source can be reached (or records the unload as
 * pending), and records it. When some members fail over and others cannot, the failover stops: the partial state
 * is recorded on the group and reported (`serverGroup.partiallyFailedOver`), the group stays where it was, and a
 * later failover finishes the remaining members.
 *
 * @public
 */
export async function runGroupFailover(cx: GroupContext, wf: WorkflowContext, input: Input): Promise<{ site: string; forced: boolean; members: string[]; warnings: string[] }> {
  const group = cx.group(input.name)
  const nameRecords = input.nameRecords ?? group.nameRecords.map((r) => r.name)
  await wf.step(
    'reserve',
    async () => {
      const reservation = { site: input.target, interfaces: input.interfaces, mounts: input.mounts, nameRecords, forced: input.forced, reason: 'failover' as const, at: cx.deps.clock.now() }
      await cx.commit((state) => decideReserve(state, input.name, reservation))
      cx.deps.events.emit('serverGroup.reserved', 'info', { name: input.name, site: input.target, interfaces: input.interfaces, mounts: input.mounts, nameRecords, forced: input.forced })
      return null
    },
    { compensate: async () => void (await cx.commit((state) => decideReserve(state, input.name, null))) },
  )
  const members = await wf.step('members', () => failMembersOver(cx, input))
  const warnings = await wf.step('load', async () => {
    for (const id of group.members) {
      const rel = await cx.deps.evMirrors.get({ id })
      if (rel.state !== 'failedOver' || rel.destination.site !== input.target) {
        throw new DrError('E_PRECONDITION', `member ${id} of server group "${input.name}" is not writable at ${input.target}`, { name: input.name, member: id })
      }
    }
    const loaded = await loadAt(cx, group, input.target, { interfaces: input.interfaces, mounts: input.mounts, nameRecords })
    cx.deps.events.emit('serverGroup.loaded', 'info', { name: input.name, site: input.target, warnings: loaded })
    return loaded
  })
  await wf.step('unload', async () => {
    const network = cx.deps.sites(input.target).network
    const probe = await callAdapter(network.kind, 'probe', () => network.probe(input.from))
    if (!probe.reachable) {
      await cx.commit((state) => decideUnloadDeferred(state, input.name, input.from))
      cx.deps.events.emit('serverGroup.unloadDeferred', 'warning', { name: input.name, site: input.from, reason: 'unreachable' })
      return false
    }
    await unloadAt(cx, group, input.from)
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

/** Fails every member over in parallel (those failed over already are left alone); records and reports a partial outcome. */
async function failMembersOver(cx: GroupContext, input: Input): Promise<string[]> {
  const { members } = cx.group(input.name)
  const outcomes = await Promise.allSettled(
    members.map(async (id) => {
      const rel = await cx.deps.evMirrors.get({ id })
      if (rel.state !== 'failedOver' || rel.operation?.kind === 'failover') await cx.deps.evMirrors.failover({ id })
    }),
  )
  const crash = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && isInterruption(o.reason))
  if (crash !== undefined) throw crash.reason
  const failed = outcomes.flatMap((o, i) => {
    if (o.status === 'fulfilled') return []
    const error = toDrError(o.reason)
    return [{ member: members[i] ?? '', code: error.code, message: error.message }]
  })
  if (failed.length === 0) return [...members]
  const first = failed[0]
  const states = await Promise.all(members.map(async (id) => ({ id, rel: await cx.deps.evMirrors.get({ id }) })))
  const failedOver = states.filter((m) => m.rel.state === 'failedOver' && m.rel.destination.site === input.target).map((m) => m.id)
  if (failedOver.length > 0) {
    await cx.commit((state) => decidePartialFailover(state, input.name, { target: input.target, failedOver, failed, at: cx.deps.clock.now() }))
    cx.deps.events.emit('serverGroup.partiallyFailedOver', 'critical', { name: input.name, from: input.from, to: input.target, failedOver, failed })
  }
  throw new DrError(
    (first?.code ?? 'E_INTERNAL') as DrError['code'],
    `failover of server group "${input.name}" stopped part-way: ${failed.map((f) => `${f.member} (${f.code}: ${f.message})`).join('; ')} could not fail over${failedOver.length > 0 ? `, ${failedOver.join(', ')} did` : ''}; the group stays on ${input.from} — fix the cause and fail over again to finish`,
    { name: input.name, failed, failedOver },
  )
}
