import * as t from 'io-ts'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { decidePlaced, decideUnloadDeferred } from './decide.js'
import { survey } from './footprint.js'
import { leavePlan } from './plans.js'
import { PORT_RETRY, placementSteps, surveyOptions } from './steps.js'

/**
 * The workflow type of a server-group unload.
 *
 * @public
 */
export const GROUP_UNLOAD_WORKFLOW = 'serverGroup.unload'

/**
 * The journaled input of a group workflow that names a group and a site (load, unload, move).
 *
 * @public
 */
export const GroupSiteWorkflowInput = t.type({ name: t.string, site: t.string })

/**
 * What an unload did: the site, and whether the group was loaded there (false: an unload a failover deferred was
 * finished).
 *
 * @public
 */
export const GroupUnloadResult = t.type({ site: t.string, loaded: t.boolean })

/**
 * Unloads a group from `site` (A19 unload). Where it is loaded: dismounts its volumes, releases the addresses the
 * site holds and deletes its name records, then records it unloaded — and a failure on the way puts everything
 * back (the group stays loaded). Where it is not loaded (an unload a failover had to defer): dismounts and releases
 * what the site still holds for it, leaves the name records (they point at the group where it is now) and clears
 * the pending record — a failure leaves the record pending, and running it again finishes it.
 *
 * @public
 */
export async function runGroupUnload(cx: GroupContext, wf: WorkflowContext, input: t.TypeOf<typeof GroupSiteWorkflowInput>): Promise<t.TypeOf<typeof GroupUnloadResult>> {
  const loaded = await wf.step('locate', async () => cx.group(input.name).loadedOn === input.site)
  const { footprint } = await wf.step(
    'survey',
    async () => ({ footprint: await survey(cx, leavePlan(cx.group(input.name), input.site, loaded)) }),
    loaded ? surveyOptions(cx, input.name) : { retry: PORT_RETRY },
  )
  await placementSteps(cx, wf, input.name, footprint)
  await wf.step('record', async () => {
    if (loaded) await cx.commit((state) => decidePlaced(state, input.name, null))
    else if (cx.group(input.name).pendingUnload === input.site) await cx.commit((state) => decideUnloadDeferred(state, input.name, null))
    cx.deps.events.emit('serverGroup.unloaded', 'info', { name: input.name, site: input.site })
    return null
  })
  return { site: input.site, loaded }
}
