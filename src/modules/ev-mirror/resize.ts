import { callAdapter } from '../../kernel/errors.js'
import { getOrThrow } from '../../kernel/either.js'
import type { EvContext } from './context.js'
import { decidePairs, planResize, type SourceMember } from './decide.js'
import { recordEpoch } from './epoch.js'
import { setSideWritable } from './side-ops.js'
import { pairEnds, type EvSide } from './state.js'

/**
 * The configuration record on a destination constituent naming the source constituent whose id it carries.
 *
 * @public
 */
export const SOURCE_ID_KEY = 'ev-mirror.sourceId'

/**
 * Resizes `destination` to the members of the source: adds data constituents, then removes those the source
 * no longer has (and extras handed out below the highest new ordinal). The destination's constituents are
 * writable only while it changes: read-only again when the resize ends, whether it succeeded or failed.
 * Idempotent: planned from the current state every time.
 *
 * @public
 */
export async function resizeToMatch(cx: EvContext, id: string, destination: EvSide, members: readonly SourceMember[]): Promise<{ added: number[]; removed: number[] }> {
  const before = await cx.record(destination)
  const plan = getOrThrow(planResize(members, before))
  if (plan.add > 0 || plan.remove.length > 0) {
    await setSideWritable(cx, destination, true)
    try {
      if (plan.add > 0) await cx.volumes.expand({ site: destination.site, volume: destination.volume, add: plan.add })
      const after = getOrThrow(planResize(members, await cx.record(destination)))
      if (after.remove.length > 0) await cx.volumes.shrink({ site: destination.site, volume: destination.volume, remove: after.remove })
    } finally {
      await setSideWritable(cx, destination, false)
    }
  }
  const wanted = new Set(members.filter((m) => m.role === 'data').map((m) => m.ordinal))
  const activeBefore = new Set(before.members.filter((m) => m.role === 'data' && m.state === 'active').map((m) => m.ordinal))
  const added = [...wanted].filter((o) => !activeBefore.has(o)).sort((x, y) => x - y)
  const removed = [...activeBefore].filter((o) => !wanted.has(o)).sort((x, y) => x - y)
  if (added.length > 0 || removed.length > 0) cx.events.emit('evMirror.destinationResized', 'info', { id, site: destination.site, volume: destination.volume, added, removed })
  return { added, removed }
}

/**
 * Gives every destination constituent of an active pair the source id (MIR.2/3): journals the pairs, the id
 * map and the member relationships of new pairs; records on each destination constituent the source id and the
 * relationship's epoch (so one added by a resize refuses an older epoch before its first transfer); makes the
 * destination read-only at the storage level and marks it a replica at the volume level (clients neither write
 * it nor read it around its read redirect).
 *
 * @public
 */
export async function mapIds(cx: EvContext, id: string, members: readonly SourceMember[]): Promise<number> {
  const { destination } = cx.sides(id)
  const record = await cx.record(destination)
  const events = await cx.commit((state) => decidePairs(state, id, members, record, cx.clock.now()))
  const rel = cx.rel(id)
  await cx.volumes.setReplica({ site: destination.site, volume: destination.volume, replicaOf: id })
  const storage = cx.sites(destination.site).storage
  for (const pair of rel.pairs.filter((p) => p.state === 'active')) {
    const ends = pairEnds(rel, pair)
    await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(ends.destination, SOURCE_ID_KEY, ends.source, cx.token()))
    await recordEpoch(storage, ends.destination, rel.epoch, cx.token(), id)
  }
  await setSideWritable(cx, destination, false)
  if (events.some((e) => e.type === 'evMirror.pairsChanged')) cx.events.emit('evMirror.idsMapped', 'info', { id, site: destination.site, pairs: rel.idMap })
  for (const event of events) {
    if (event.type === 'evMirror.memberRelationshipSet') {
      cx.events.emit('evMirror.memberRelationshipCreated', 'info', { id, key: event.data.key, source: event.data.member.source, destination: event.data.member.destination, recreated: false })
    }
  }
  return rel.pairs.filter((p) => p.state === 'active').length
}
