import * as t from 'io-ts'
import { JsonValue } from '../../kernel/codecs.js'

const nullable = <C extends t.Mixed>(codec: C) => t.union([codec, t.null])

/**
 * One side of an expandable-volume relationship: the site and the expandable volume, with the cluster,
 * repository and vserver identifiers the relationship record carries for it (fields A–D / E–H of the seed).
 *
 * @public
 */
export const EvSideCodec = t.type({ site: t.string, volume: t.string, repository: t.string, vserver: t.string }, 'EvSide')

/**
 * One side of an expandable-volume relationship.
 *
 * @public
 */
export type EvSide = t.TypeOf<typeof EvSideCodec>

/**
 * A member pair: the constituent role and ordinal, the storage volume on side `a` and on side `b`.
 *
 * @public
 */
export const MemberPairCodec = t.type(
  { role: t.keyof({ namespace: null, ols: null, data: null }), ordinal: t.number, a: t.string, b: t.string, state: t.keyof({ active: null, retired: null }) },
  'MemberPair',
)

/**
 * One member pair of an expandable-volume relationship.
 *
 * @public
 */
export type MemberPair = t.TypeOf<typeof MemberPairCodec>

/**
 * The id map of the destination catalog: a destination constituent's original id and the source id it was given.
 *
 * @public
 */
export const IdMapEntryCodec = t.type({ destinationOriginalId: t.string, sourceId: t.string }, 'IdMapEntry')

/**
 * One id-map row.
 *
 * @public
 */
export type IdMapEntry = t.TypeOf<typeof IdMapEntryCodec>

/**
 * The relationship configuration (field J): the transfer schedule (ms, null: manual), the users allowed to read
 * the replicated snapshots (null: as on the source), and anything else the embedder keeps with it.
 *
 * @public
 */
export const EvMirrorConfigCodec = t.type({ scheduleMs: nullable(t.number), authorizedUsers: nullable(t.array(t.string)), extra: JsonValue }, 'EvMirrorConfig')

/**
 * A relationship configuration.
 *
 * @public
 */
export type EvMirrorConfig = t.TypeOf<typeof EvMirrorConfigCodec>

/**
 * The last snapshot transferred completely (data, configuration and catalog on every constituent): its overall
 * name and the transfer sequence number that brought it.
 *
 * @public
 */
export const TransferredCodec = t.type({ name: t.string, sequence: t.number, at: t.number }, 'Transferred')

/**
 * The last complete transfer.
 *
 * @public
 */
export type Transferred = t.TypeOf<typeof TransferredCodec>

/**
 * An operation under way on a relationship (the workflow doing it), so that a second one is refused and a
 * crash leaves a resumable record.
 *
 * @public
 */
export const EvOperationCodec = t.type({ kind: t.keyof({ transfer: null, failover: null, resync: null }), workflowId: t.string, since: t.number }, 'EvOperation')

/**
 * An operation under way.
 *
 * @public
 */
export type EvOperation = t.TypeOf<typeof EvOperationCodec>

/**
 * The whole-volume relationship (the seed's mirroring data structure, fields A–J): its two sides and which one
 * is the source (`a` at creation; `b` after a resync reversed it), type `mirror`, configuration, member pairs,
 * the destination catalog's id map, the relationship state and epoch, the last complete transfer and any
 * operation under way.
 *
 * @public
 */
export const EvRelationshipCodec = t.type(
  {
    id: t.string,
    type: t.literal('mirror'),
    a: EvSideCodec,
    b: EvSideCodec,
    primary: t.keyof({ a: null, b: null }),
    state: t.keyof({ replicating: null, failedOver: null }),
    epoch: t.number,
    config: EvMirrorConfigCodec,
    pairs: t.array(MemberPairCodec),
    idMap: t.array(IdMapEntryCodec),
    sequence: t.number,
    lastTransferred: nullable(TransferredCodec),
    operation: nullable(EvOperationCodec),
    createdAt: t.number,
    updatedAt: t.number,
  },
  'EvRelationship',
)

/**
 * One whole-volume relationship.
 *
 * @public
 */
export type EvRelationship = t.TypeOf<typeof EvRelationshipCodec>

/**
 * A member relationship: one per member pair, from the source constituent to the destination constituent.
 *
 * @public
 */
export const MemberRelationshipCodec = t.type({ relationship: t.string, role: MemberPairCodec.props.role, ordinal: t.number, source: t.string, destination: t.string }, 'MemberRelationship')

/**
 * One member relationship.
 *
 * @public
 */
export type MemberRelationship = t.TypeOf<typeof MemberRelationshipCodec>

/**
 * The state of the module: whole-volume relationships by id and member relationships by key
 * (`<relationship>/<role>-<ordinal>`).
 *
 * @public
 */
export const EvMirrorStateCodec = t.type({ relationships: t.record(t.string, EvRelationshipCodec), members: t.record(t.string, MemberRelationshipCodec) }, 'EvMirrorState')

/**
 * The module state.
 *
 * @public
 */
export type EvMirrorState = t.TypeOf<typeof EvMirrorStateCodec>

/**
 * The empty state.
 *
 * @public
 */
export const emptyEvMirrorState: EvMirrorState = { relationships: {}, members: {} }

const Id = { id: t.string, at: t.number }

/**
 * The journal events of the module.
 *
 * @public
 */
export const EvMirrorJournalEventCodec = t.union([
  t.type({ type: t.literal('evMirror.created'), data: EvRelationshipCodec }),
  t.type({ type: t.literal('evMirror.pairsChanged'), data: t.type({ ...Id, pairs: t.array(MemberPairCodec), idMap: t.array(IdMapEntryCodec) }) }),
  t.type({ type: t.literal('evMirror.memberRelationshipSet'), data: t.type({ key: t.string, member: MemberRelationshipCodec }) }),
  t.type({ type: t.literal('evMirror.memberRelationshipDropped'), data: t.type({ key: t.string }) }),
  t.type({ type: t.literal('evMirror.operationBegun'), data: t.type({ ...Id, operation: EvOperationCodec }) }),
  t.type({ type: t.literal('evMirror.operationEnded'), data: t.type({ ...Id, workflowId: t.string }) }),
  t.type({ type: t.literal('evMirror.transferred'), data: t.type({ ...Id, transferred: TransferredCodec }) }),
  t.type({ type: t.literal('evMirror.failedOver'), data: t.type({ ...Id, epoch: t.number }) }),
  t.type({ type: t.literal('evMirror.reversed'), data: t.type({ ...Id, epoch: t.number, base: nullable(t.string) }) }),
  t.type({ type: t.literal('evMirror.deleted'), data: t.type(Id) }),
])

/**
 * One journal event.
 *
 * @public
 */
export type EvMirrorJournalEvent = t.TypeOf<typeof EvMirrorJournalEventCodec>

/**
 * The key of a member relationship.
 *
 * @public
 */
export function memberKey(relationship: string, role: string, ordinal: number): string {
  return `${relationship}/${role}-${ordinal}`
}

/**
 * Applies one journal event to the state (immer draft).
 *
 * @public
 */
export function reduceEvMirrorState(draft: { relationships: Record<string, EvRelationship>; members: Record<string, MemberRelationship> }, event: EvMirrorJournalEvent): void {
  if (event.type === 'evMirror.created') {
    draft.relationships[event.data.id] = event.data
    return
  }
  if (event.type === 'evMirror.memberRelationshipSet') {
    draft.members[event.data.key] = event.data.member
    return
  }
  if (event.type === 'evMirror.memberRelationshipDropped') {
    delete draft.members[event.data.key]
    return
  }
  const rel = draft.relationships[event.data.id]
  if (rel === undefined) return
  rel.updatedAt = event.data.at
  switch (event.type) {
    case 'evMirror.pairsChanged':
      rel.pairs = event.data.pairs
      rel.idMap = event.data.idMap
      return
    case 'evMirror.operationBegun':
      rel.operation = event.data.operation
      return
    case 'evMirror.operationEnded':
      if (rel.operation?.workflowId === event.data.workflowId) rel.operation = null
      return
    case 'evMirror.transferred':
      rel.lastTransferred = event.data.transferred
      rel.sequence = Math.max(rel.sequence, event.data.transferred.sequence)
      return
    case 'evMirror.failedOver':
      rel.state = 'failedOver'
      rel.epoch = event.data.epoch
      return
    case 'evMirror.reversed':
      rel.state = 'replicating'
      rel.epoch = event.data.epoch
      rel.primary = rel.primary === 'a' ? 'b' : 'a'
      rel.lastTransferred = event.data.base === null ? null : { name: event.data.base, sequence: rel.sequence, at: event.data.at }
      rel.idMap = rel.idMap.map((e) => ({ destinationOriginalId: e.sourceId, sourceId: e.destinationOriginalId }))
      return
    case 'evMirror.deleted':
      delete draft.relationships[event.data.id]
      for (const key of Object.keys(draft.members)) if (draft.members[key]?.relationship === event.data.id) delete draft.members[key]
      return
  }
}

/**
 * The source and destination sides of a relationship in its current direction.
 *
 * @public
 */
export function directionOf(rel: EvRelationship): { source: EvSide; destination: EvSide; direction: 'forward' | 'reversed' } {
  return rel.primary === 'a' ? { source: rel.a, destination: rel.b, direction: 'forward' } : { source: rel.b, destination: rel.a, direction: 'reversed' }
}

/**
 * The source and destination storage volumes of a member pair in the relationship's current direction.
 *
 * @public
 */
export function pairEnds(rel: EvRelationship, pair: MemberPair): { source: string; destination: string } {
  return rel.primary === 'a' ? { source: pair.a, destination: pair.b } : { source: pair.b, destination: pair.a }
}
