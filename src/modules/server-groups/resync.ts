import * as t from 'io-ts'
import { DrError, toDrError } from '../../kernel/errors.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { EvMirrorView } from '../ev-mirror/index.js'
import type { GroupContext } from './context.js'
import type { ServerGroup } from './state.js'
import { runGroupUnload } from './unload.js'

/**
 * The workflow type of a server-group resync.
 *
 * @public
 */
export const GROUP_RESYNC_WORKFLOW = 'serverGroup.resync'

/**
 * The journaled input of a group resync: the group and the consent each member's resync needs when its old primary
 * was written after the common snapshot.
 *
 * @public
 */
export const GroupResyncWorkflowInput = t.type({ name: t.string, acknowledgeDataLoss: t.boolean, safetySnapshot: t.boolean })

type Input = t.TypeOf<typeof GroupResyncWorkflowInput>

/** Whether member `rel` has been resynchronised towards `site` already (it replicates from there, nothing running). */
function resynced(rel: EvMirrorView, site: string): boolean {
  return rel.state === 'replicating' && rel.source.site === site && rel.operation === null
}

/**
 * Checks that every member of `group` can be resynchronised towards the site the group is active on: failed over
 * there, resyncing, or resynchronised already — and, for a new resync (`fresh`), that there is something to do: a
 * member not resynchronised yet, or an unload a failover deferred. `E_PRECONDITION` otherwise, naming the members.
 *
 * @public
 */
export async function checkResyncable(cx: GroupContext, group: ServerGroup, fresh: boolean): Promise<void> {
  const bad: string[] = []
  let done = 0
  for (const id of group.members) {
    const rel = await cx.deps.evMirrors.get({ id })
    const state = `${id} (${rel.state}, ${rel.source.site} → ${rel.destination.site})`
    if (resynced(rel, group.active)) done++
    else if (rel.operation?.kind !== 'resync' && (rel.state !== 'failedOver' || rel.destination.site !== group.active)) bad.push(state)
  }
  if (bad.length > 0) throw new DrError('E_PRECONDITION', `resync of server group "${group.name}" needs every member failed over to ${group.active}: ${bad.join(', ')} is not`, { name: group.name, members: bad })
  if (fresh && done === group.members.length && group.pendingUnload === undefined) {
    throw new DrError('E_PRECONDITION', `server group "${group.name}" has nothing to resync: every member replicates from ${group.active} already`, { name: group.name })
  }
}

/**
 * Resynchronises a group back towards its previous site (A21): first finishes an unload a failover had to defer
 * there (so nothing of the group stays mounted at the site being rewritten), then resyncs every member in parallel
 * (`evMirrors.resync`; a member resynchronised already is left alone, so running it again finishes what a failure
 * or a crash left), then reports `serverGroup.resynced`. A member resync cannot be undone: a failure stops the group
 * resync with every member's outcome in the error, and running it again finishes the rest.
 *
 * @public
 */
export async function runGroupResync(cx: GroupContext, wf: WorkflowContext, input: Input): Promise<{ members: string[] }> {
  const pending = await wf.step('check', async () => {
    const group = cx.group(input.name)
    await checkResyncable(cx, group, false)
    return group.pendingUnload ?? null
  })
  if (pending !== null) await runGroupUnload(cx, wf, { name: input.name, site: pending })
  const { members, active } = cx.group(input.name)
  await wf.step('members', async () => {
    const consent = { ...(input.acknowledgeDataLoss ? { acknowledgeDataLoss: true as const } : {}), ...(input.safetySnapshot ? { safetySnapshot: true as const } : {}) }
    const outcomes = await Promise.allSettled(
      members.map(async (id) => {
        if (!resynced(await cx.deps.evMirrors.get({ id }), active)) await cx.deps.evMirrors.resync({ id, ...consent })
      }),
    )
    const crash = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && isInterruption(o.reason))
    if (crash !== undefined) throw crash.reason
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ member: members[i] ?? '', error: toDrError(o.reason) }] : []))
    const first = failed[0]
    if (first === undefined) return null
    throw new DrError(first.error.code, `resync of server group "${input.name}" stopped: ${failed.map((f) => `${f.member} (${f.error.code}: ${f.error.message})`).join('; ')}; the other members are resynchronised — fix the cause and resync again`, {
      name: input.name,
      failed: failed.map((f) => ({ member: f.member, code: f.error.code, message: f.error.message })),
    })
  })
  await wf.step('record', async () => {
    cx.deps.events.emit('serverGroup.resynced', 'info', { name: input.name, site: active, members })
    return null
  })
  return { members: [...members] }
}
