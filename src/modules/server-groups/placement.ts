import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { decidePlaced } from './decide.js'
import { survey } from './footprint.js'
import { loadWarnings } from './identity.js'
import { movePlan, placePlan } from './plans.js'
import { placementSteps, surveyOptions } from './steps.js'
import type { GroupSiteWorkflowInput } from './unload.js'

/**
 * The workflow type of a server-group load.
 *
 * @public
 */
export const GROUP_LOAD_WORKFLOW = 'serverGroup.load'

/**
 * The workflow type of a server-group move.
 *
 * @public
 */
export const GROUP_MOVE_WORKFLOW = 'serverGroup.move'

/**
 * What a load or a move resolves with: where the group is loaded now and the load's warnings.
 *
 * @public
 */
export const GroupPlacedResult = t.type({ site: t.string, warnings: t.array(t.string) })

type Input = t.TypeOf<typeof GroupSiteWorkflowInput>
type Placed = t.TypeOf<typeof GroupPlacedResult>

/**
 * Loads a group on a site (A19 load): mounts its volumes on the site's host, moves its virtual addresses to the
 * site, points its name records at them, then records it loaded there. An interface the site does not offer or
 * another group uses is a warning. A failure on the way puts back what was there before: the group stays unloaded.
 *
 * @public
 */
export async function runGroupLoad(cx: GroupContext, wf: WorkflowContext, input: Input): Promise<Placed> {
  const { footprint, warnings } = await wf.step(
    'survey',
    async () => {
      const group = cx.group(input.name)
      const warnings = await loadWarnings(cx, group, input.site)
      return { footprint: await survey(cx, placePlan(group, input.site)), warnings }
    },
    surveyOptions(cx, input.name),
  )
  await placementSteps(cx, wf, input.name, footprint)
  await wf.step('record', async () => {
    await cx.commit((state) => decidePlaced(state, input.name, input.site))
    cx.deps.events.emit('serverGroup.loaded', 'info', { name: input.name, site: input.site, warnings })
    return null
  })
  return { site: input.site, warnings }
}

/**
 * Moves a loaded group to another site (A19 move: unload + load). Its volumes are dismounted where it was before
 * they are mounted at the target, so no volume is mounted at both; its addresses move to the target and its name
 * records point at them; then it is recorded loaded at the target. A failure on the way puts everything back: the
 * group stays loaded where it was.
 *
 * @public
 */
export async function runGroupMove(cx: GroupContext, wf: WorkflowContext, input: Input): Promise<Placed> {
  const { footprint, from, warnings } = await wf.step(
    'survey',
    async () => {
      const group = cx.group(input.name)
      const from = group.loadedOn
      if (from === null) throw new DrError('E_PRECONDITION', `server group "${input.name}" is not loaded`, { name: input.name })
      const warnings = await loadWarnings(cx, group, input.site)
      return { footprint: await survey(cx, movePlan(group, from, input.site)), from, warnings }
    },
    surveyOptions(cx, input.name),
  )
  await placementSteps(cx, wf, input.name, footprint)
  await wf.step('record', async () => {
    await cx.commit((state) => decidePlaced(state, input.name, input.site))
    cx.deps.events.emit('serverGroup.unloaded', 'info', { name: input.name, site: from })
    cx.deps.events.emit('serverGroup.loaded', 'info', { name: input.name, site: input.site, warnings })
    return null
  })
  return { site: input.site, warnings }
}
