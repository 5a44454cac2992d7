import * as t from 'io-ts'
import { JsonValue } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { decideChange, decideReserve } from './decide.js'
import { survey } from './footprint.js'
import { loadWarnings } from './identity.js'
import { changePlan } from './plans.js'
import type { DiscrepancyKind } from './prevalidate.js'
import { GroupInterfaceCodec, GroupMountCodec, GroupNameRecordCodec, type ServerGroup } from './state.js'
import { placementSteps, surveyOptions } from './steps.js'

/**
 * The workflow type of a server-group configuration change.
 *
 * @public
 */
export const GROUP_CHANGE_WORKFLOW = 'serverGroup.change'

const kinds: Record<DiscrepancyKind, null> = { insufficientInterfaces: null, interfaceInUse: null, addressInUse: null, nameRecordInUse: null, missingFileSystem: null, fsMountedInOtherGroup: null, mountPathTaken: null }
const DiscrepancyCodec = t.type({
  kind: t.keyof(kinds),
  item: t.string,
  detail: t.string,
  blocksLoad: t.boolean,
})

/**
 * The change a configuration change asks for: the parts it replaces (each optional).
 *
 * @public
 */
export const GroupChangeCodec = t.partial({ interfaces: t.array(GroupInterfaceCodec), nameRecords: t.array(GroupNameRecordCodec), mounts: t.array(GroupMountCodec), config: JsonValue })

/**
 * The journaled input of a configuration change: the group, the change, what prevalidation of the other site
 * found available there (to reserve), whether that is forced, and the discrepancies it reported.
 *
 * @public
 */
export const GroupChangeWorkflowInput = t.type({
  name: t.string,
  change: GroupChangeCodec,
  reserve: t.type({ site: t.string, interfaces: t.array(t.string), mounts: t.array(t.string), nameRecords: t.array(t.string), forced: t.boolean }),
  discrepancies: t.array(DiscrepancyCodec),
})

/**
 * What a configuration change resolves with: the discrepancies prevalidation of the other site reported.
 *
 * @public
 */
export const GroupChangeResult = t.type({ discrepancies: t.array(DiscrepancyCodec) })

type Input = t.TypeOf<typeof GroupChangeWorkflowInput>
type Definition = Pick<ServerGroup, 'interfaces' | 'nameRecords' | 'mounts' | 'config'>

/** The group's definition with `change` applied. */
function changed(group: ServerGroup, change: t.TypeOf<typeof GroupChangeCodec>): Definition {
  return { interfaces: change.interfaces ?? group.interfaces, nameRecords: change.nameRecords ?? group.nameRecords, mounts: change.mounts ?? group.mounts, config: change.config ?? group.config }
}

/**
 * Changes a group's identity, mounts or configuration (A22 step 795): reserves at the other site what the change
 * needs there — decided on the journal as it is now —, records the new definition, and, where the group is loaded,
 * applies it: what the change drops is dismounted, released and deleted, what it adds is mounted, claimed and
 * pointed at. A failure on the way undoes it all: the previous reservation, definition, mounts and identity.
 *
 * @public
 */
export async function runGroupChange(cx: GroupContext, wf: WorkflowContext, input: Input): Promise<t.TypeOf<typeof GroupChangeResult>> {
  const { before, next, footprint } = await wf.step(
    'survey',
    async () => {
      const group = cx.group(input.name)
      const next = changed(group, input.change)
      const site = group.loadedOn ?? group.active
      if (group.loadedOn !== null) await loadWarnings(cx, { ...group, ...next }, site)
      const plan = group.loadedOn === null ? { registry: site, mounts: [], addresses: [], names: [] } : changePlan(group, next, site)
      const before = { interfaces: group.interfaces, nameRecords: group.nameRecords, mounts: group.mounts, config: group.config, reservation: group.reservation }
      return { before, next, footprint: await survey(cx, plan) }
    },
    surveyOptions(cx, input.name),
  )
  await wf.step(
    'reserve',
    async () => {
      const reservation = { ...input.reserve, reason: 'configChange' as const, at: cx.deps.clock.now() }
      await cx.commit((state) => decideReserve(state, input.name, reservation, next.mounts))
      cx.deps.events.emit('serverGroup.reserved', 'info', { name: input.name, site: reservation.site, interfaces: reservation.interfaces, mounts: reservation.mounts, nameRecords: reservation.nameRecords, forced: reservation.forced })
      return null
    },
    { compensate: async () => void (await cx.commit((state) => decideReserve(state, input.name, before.reservation))) },
  )
  await wf.step(
    'change',
    async () => {
      await cx.commit((state) => decideChange(state, input.name, next))
      return null
    },
    { compensate: async () => void (await cx.commit((state) => decideChange(state, input.name, before))) },
  )
  await placementSteps(cx, wf, input.name, footprint)
  await wf.step('record', async () => {
    cx.deps.events.emit('serverGroup.changed', 'info', { name: input.name })
    return null
  })
  return { discrepancies: input.discrepancies }
}
