import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { constituentFenceOrder, type VolumeView } from '../volume/index.js'
import type { EvContext } from './context.js'
import { decideCreate, decideDeleted, type SourceMember } from './decide.js'
import { EvRelationshipCodec } from './state.js'
import { mapIds, resizeToMatch } from './resize.js'

/**
 * The workflow type of the mirroring setup.
 *
 * @public
 */
export const EV_SETUP_WORKFLOW = 'evMirror.setup'

/**
 * The journaled input of the mirroring setup: the relationship record to create.
 *
 * @public
 */
export const EvSetupWorkflowInput = t.type({ relationship: EvRelationshipCodec })

/**
 * The members of an expandable volume as a transfer sees them (retired ones left out).
 *
 * @public
 */
export function membersOf(record: VolumeView): SourceMember[] {
  return constituentFenceOrder(record).map((m) => ({ role: m.role, ordinal: m.ordinal, volume: m.volume }))
}

/**
 * Sets up mirroring (MIR.1–4): the destination expandable volume is created with the source's geometry (or an
 * existing one is checked), the relationship is recorded, the destination is resized to the source's members,
 * and each destination constituent is given its source's id with one member relationship per pair.
 *
 * @public
 */
export async function runEvSetup(cx: EvContext, wf: WorkflowContext, input: t.TypeOf<typeof EvSetupWorkflowInput>): Promise<number> {
  const rel = input.relationship
  const source = await cx.record(rel.a)
  await wf.step(
    'destination',
    async () => {
      const existing = await cx.record(rel.b).catch(() => undefined)
      if (existing !== undefined) {
        const same = JSON.stringify(existing.geometry) === JSON.stringify(source.geometry)
        if (!same) throw new DrError('E_PRECONDITION', `destination "${rel.b.volume}" on ${rel.b.site} does not have the source's geometry`, { id: rel.id })
        return false
      }
      const top = Math.max(1, ...source.members.filter((m) => m.role === 'data' && m.state !== 'retired').map((m) => m.ordinal))
      await cx.volumes.create({
        site: rel.b.site,
        volume: rel.b.volume,
        dataConstituents: top,
        size: source.geometry.dataSizeBytes,
        maxObjects: source.geometry.namespaceSlots / 2,
        maxFenceHoldMs: source.maxFenceHoldMs,
      })
      return true
    },
    { compensate: async (created) => (created ? cx.volumes.delete({ site: rel.b.site, volume: rel.b.volume }) : undefined) },
  )
  await wf.step(
    'record',
    async () => {
      await cx.commit((state) => (state.relationships[rel.id] !== undefined ? E.right([]) : decideCreate(state, rel)))
      return null
    },
    { compensate: async () => void (await cx.commit((state) => decideDeleted(state, rel.id, cx.clock.now()))) },
  )
  const members = membersOf(source)
  await wf.step('resize', () => resizeToMatch(cx, rel.id, rel.b, members))
  const pairs = await wf.step('map', () => mapIds(cx, rel.id, members))
  cx.events.emit('evMirror.created', 'info', { id: rel.id, source: { site: rel.a.site, volume: rel.a.volume }, destination: { site: rel.b.site, volume: rel.b.volume }, pairs })
  return pairs
}
