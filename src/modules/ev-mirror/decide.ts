import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import type { SnapshotEntry, VolumeRecord } from '../volume/index.js'
import {
  memberKey,
  pairEnds,
  type EvMirrorJournalEvent,
  type EvMirrorState,
  type EvOperation,
  type EvRelationship,
  type IdMapEntry,
  type MemberPair,
  type Transferred,
} from './state.js'

type Decided = DrEither<EvMirrorJournalEvent[]>

/**
 * A member of the source as the transfer sees it: role, ordinal and storage volume.
 *
 * @public
 */
export interface SourceMember {
  readonly role: 'namespace' | 'ols' | 'data'
  readonly ordinal: number
  readonly volume: string
}

/**
 * The relationship `id`, or `E_NOT_FOUND`.
 *
 * @public
 */
export function findRelationship(state: EvMirrorState, id: string): DrEither<EvRelationship> {
  const rel = state.relationships[id]
  return rel === undefined ? E.left(new DrError('E_NOT_FOUND', `expandable-volume mirror "${id}" does not exist`, { id })) : E.right(rel)
}

/**
 * Decides the creation of a relationship: refused with `E_CONFLICT` when the id is taken or either volume
 * already takes part in another relationship.
 *
 * @public
 */
export function decideCreate(state: EvMirrorState, rel: EvRelationship): Decided {
  if (state.relationships[rel.id] !== undefined) return E.left(new DrError('E_CONFLICT', `expandable-volume mirror "${rel.id}" already exists`, { id: rel.id }))
  const same = (x: { site: string; volume: string }, y: { site: string; volume: string }): boolean => x.site === y.site && x.volume === y.volume
  const other = Object.values(state.relationships).find((r) => [r.a, r.b].some((side) => same(side, rel.a) || same(side, rel.b)))
  if (other !== undefined) return E.left(new DrError('E_CONFLICT', `a volume of "${rel.id}" already takes part in mirror "${other.id}"`, { id: rel.id, other: other.id }))
  if (same(rel.a, rel.b)) return E.left(new DrError('E_INVALID_INPUT', 'source and destination are the same volume', { id: rel.id }))
  const events: EvMirrorJournalEvent[] = [{ type: 'evMirror.created', data: rel }]
  return E.right([...events, ...missingMemberRelationships({ relationships: { [rel.id]: rel }, members: {} }, rel)])
}

/**
 * Decides the removal of a relationship record and its member relationships (nothing when it is already gone).
 *
 * @public
 */
export function decideDeleted(state: EvMirrorState, id: string, at: number): Decided {
  return E.right(state.relationships[id] === undefined ? [] : [{ type: 'evMirror.deleted', data: { id, at } }])
}

/**
 * Decides the start of an operation: `E_CONFLICT` while another runs, `E_PRECONDITION` when the relationship is
 * not in the state the operation needs (transfer and failover: replicating, failover also a complete transfer;
 * resync: failed over).
 *
 * @public
 */
export function decideBegin(state: EvMirrorState, id: string, operation: EvOperation, at: number): Decided {
  return E.chain((rel: EvRelationship): Decided => {
    if (rel.operation !== null) return E.left(new DrError('E_CONFLICT', `mirror "${id}" is running ${rel.operation.kind}`, { id, running: rel.operation.kind }))
    const needs = operation.kind === 'resync' ? 'failedOver' : 'replicating'
    if (rel.state !== needs) return E.left(new DrError('E_PRECONDITION', `${operation.kind} of mirror "${id}" needs it ${needs}; it is ${rel.state}`, { id, state: rel.state }))
    if (operation.kind === 'failover' && rel.lastTransferred === null) {
      return E.left(new DrError('E_PRECONDITION', `mirror "${id}" has no complete snapshot at the destination to present`, { id }))
    }
    return E.right([{ type: 'evMirror.operationBegun', data: { id, at, operation } }])
  })(findRelationship(state, id))
}

/**
 * What the destination must do to match the source's members: how many data constituents to add (new ordinals
 * are handed out in order, so extras below the highest new ordinal are removed again) and which ordinals to
 * remove. `E_PRECONDITION` when a source ordinal was already used and retired at the destination.
 *
 * @public
 */
export function planResize(source: readonly SourceMember[], destination: VolumeRecord): DrEither<{ add: number; remove: number[] }> {
  const wanted = new Set(source.filter((m) => m.role === 'data').map((m) => m.ordinal))
  const active = new Set(destination.members.filter((m) => m.role === 'data' && m.state === 'active').map((m) => m.ordinal))
  const missing = [...wanted].filter((o) => !active.has(o)).sort((x, y) => x - y)
  const stale = missing.find((o) => o < destination.nextOrdinal)
  if (stale !== undefined) {
    return E.left(new DrError('E_PRECONDITION', `data constituent ${stale} of "${destination.name}" was retired; it cannot be given back`, { volume: destination.name, ordinal: stale }))
  }
  const top = missing[missing.length - 1]
  const add = top === undefined ? 0 : top - destination.nextOrdinal + 1
  const extras = top === undefined ? [] : Array.from({ length: add }, (_, i) => destination.nextOrdinal + i).filter((o) => !wanted.has(o))
  const removed = [...active].filter((o) => !wanted.has(o))
  return E.right({ add, remove: [...removed, ...extras].sort((x, y) => x - y) })
}

/**
 * Decides the member pairs and the destination id map after a resize: one active pair per source member matched
 * by role and ordinal to the destination's constituent, earlier pairs that no longer match retired, and the
 * member relationships of new pairs (a missing one of an existing pair is left to the confirm step). `E_PRECONDITION` when a source member has no destination counterpart.
 *
 * @public
 */
export function decidePairs(state: EvMirrorState, id: string, source: readonly SourceMember[], destination: VolumeRecord, at: number): Decided {
  return E.chain((rel: EvRelationship): Decided => {
    const pairs: MemberPair[] = []
    for (const member of source) {
      const twin = destination.members.find((m) => m.role === member.role && m.ordinal === member.ordinal && m.state === 'active')
      if (twin === undefined) return E.left(new DrError('E_PRECONDITION', `no destination constituent for ${member.volume}`, { id, constituent: member.volume }))
      const ends = rel.primary === 'a' ? { a: member.volume, b: twin.volume } : { a: twin.volume, b: member.volume }
      pairs.push({ role: member.role, ordinal: member.ordinal, ...ends, state: 'active' })
    }
    const key = (p: { role: string; ordinal: number }): string => `${p.role}-${p.ordinal}`
    const kept = new Set(pairs.map(key))
    const retired = rel.pairs.filter((p) => !kept.has(key(p))).map((p): MemberPair => ({ ...p, state: 'retired' }))
    const idMap: IdMapEntry[] = pairs.map((p) => {
      const ends = pairEnds(rel, p)
      return { destinationOriginalId: ends.destination, sourceId: ends.source }
    })
    const next = { ...rel, pairs: [...pairs, ...retired], idMap }
    const unchanged = JSON.stringify(next.pairs) === JSON.stringify(rel.pairs) && JSON.stringify(idMap) === JSON.stringify(rel.idMap)
    const changed: EvMirrorJournalEvent[] = unchanged ? [] : [{ type: 'evMirror.pairsChanged', data: { id, at, pairs: next.pairs, idMap } }]
    const dropped: EvMirrorJournalEvent[] = retired
      .map((p) => memberKey(id, p.role, p.ordinal))
      .filter((key) => state.members[key] !== undefined)
      .map((key) => ({ type: 'evMirror.memberRelationshipDropped', data: { key } }))
    const known = new Set(rel.pairs.filter((p) => p.state === 'active').map(key))
    const fresh = missingMemberRelationships(state, next).filter((e) => !known.has(`${e.data.member.role}-${e.data.member.ordinal}`))
    return E.right([...changed, ...dropped, ...fresh])
  })(findRelationship(state, id))
}

/**
 * The events that (re)create the member relationship of every active pair that has none.
 *
 * @public
 */
export function missingMemberRelationships(state: EvMirrorState, rel: EvRelationship): Array<Extract<EvMirrorJournalEvent, { type: 'evMirror.memberRelationshipSet' }>> {
  return rel.pairs
    .filter((p) => p.state === 'active' && state.members[memberKey(rel.id, p.role, p.ordinal)] === undefined)
    .map((p) => {
      const ends = pairEnds(rel, p)
      return {
        type: 'evMirror.memberRelationshipSet' as const,
        data: { key: memberKey(rel.id, p.role, p.ordinal), member: { relationship: rel.id, role: p.role, ordinal: p.ordinal, source: ends.source, destination: ends.destination } },
      }
    })
}

/**
 * Decides the confirmation of the member relationships (XFER.3): recreates the missing ones.
 *
 * @public
 */
export function decideConfirm(state: EvMirrorState, id: string): Decided {
  return E.map((rel: EvRelationship) => missingMemberRelationships(state, rel))(findRelationship(state, id))
}

/**
 * The common snapshot of a resync: the newest valid snapshot of the new primary whose name is also a valid
 * snapshot of the old primary, or null when there is none (a baseline is needed). An invalid entry is never
 * chosen.
 *
 * @public
 */
export function commonSnapshot(newPrimary: readonly SnapshotEntry[], oldPrimary: readonly SnapshotEntry[]): string | null {
  const old = new Set(oldPrimary.filter((s) => s.valid).map((s) => s.name))
  const both = newPrimary.filter((s) => s.valid && old.has(s.name))
  return both[both.length - 1]?.name ?? null
}

/**
 * Decides the end of a complete transfer: the snapshot becomes the relationship's last transferred one (the base
 * of the next update).
 *
 * @public
 */
export function decideTransferred(state: EvMirrorState, id: string, transferred: Transferred): Decided {
  return E.map((rel: EvRelationship): EvMirrorJournalEvent[] =>
    rel.lastTransferred?.name === transferred.name ? [] : [{ type: 'evMirror.transferred', data: { id, at: transferred.at, transferred } }],
  )(findRelationship(state, id))
}

/**
 * Decides the end of an operation (whatever its outcome).
 *
 * @public
 */
export function decideEnd(state: EvMirrorState, id: string, workflowId: string, at: number): Decided {
  return E.map((rel: EvRelationship): EvMirrorJournalEvent[] =>
    rel.operation?.workflowId === workflowId ? [{ type: 'evMirror.operationEnded', data: { id, at, workflowId } }] : [],
  )(findRelationship(state, id))
}

/**
 * Decides a failover: the relationship's epoch is raised and it is failed over.
 *
 * @public
 */
export function decideFailedOver(state: EvMirrorState, id: string, epoch: number, at: number): Decided {
  return E.map((rel: EvRelationship): EvMirrorJournalEvent[] => (rel.state === 'failedOver' ? [] : [{ type: 'evMirror.failedOver', data: { id, at, epoch } }]))(findRelationship(state, id))
}

/**
 * Decides the reversal of a relationship after a resync restored the old primary: roles swap, member pairs are
 * used in the opposite direction, the epoch rises, the member relationships are rewritten, and the common
 * snapshot (null: none) becomes the base of the next transfer.
 *
 * @public
 */
export function decideReversed(state: EvMirrorState, id: string, epoch: number, base: string | null, at: number): Decided {
  return E.map((rel: EvRelationship): EvMirrorJournalEvent[] => {
    if (rel.state === 'replicating') return []
    const reversed: EvRelationship = { ...rel, primary: rel.primary === 'a' ? 'b' : 'a' }
    const rewrite = rel.pairs
      .filter((p) => p.state === 'active')
      .map((p) => {
        const ends = pairEnds(reversed, p)
        return { type: 'evMirror.memberRelationshipSet' as const, data: { key: memberKey(id, p.role, p.ordinal), member: { relationship: id, role: p.role, ordinal: p.ordinal, source: ends.source, destination: ends.destination } } }
      })
    return [{ type: 'evMirror.reversed', data: { id, at, epoch, base } }, ...rewrite]
  })(findRelationship(state, id))
}
