import * as t from 'io-ts'
import { CutPolicyCodec, PlaybackPolicyCodec, TransferPolicyCodec, VolumeRefCodec } from './session-record.js'

/**
 * Which of the two volumes of a relationship: `a` is the volume replication started from, `b` the one it
 * started to.
 *
 * @public
 */
export const SideCodec = t.union([t.literal('a'), t.literal('b')], 'Side')

/**
 * Where a relationship stands: `stopped`, `replicating` (from the primary to the other side), `failedOver`
 * (the other side was promoted; nothing replicates), or one of the transitional states of a running operation.
 *
 * @public
 */
export const MirrorStateNameCodec = t.union(
  [
    t.literal('stopped'),
    t.literal('replicating'),
    t.literal('failedOver'),
    t.literal('failingOver'),
    t.literal('resyncing'),
    t.literal('reversing'),
    t.literal('deleting'),
  ],
  'MirrorStateName',
)

/**
 * The restart point a failover left: on which side, the snapshot, the last delta set applied, the epoch and mode.
 *
 * @public
 */
export const RestartPointCodec = t.type(
  {
    side: SideCodec,
    snapshot: t.string,
    lastApplied: t.union([t.number, t.null]),
    epoch: t.number,
    mode: t.union([t.literal('sync'), t.literal('default'), t.literal('now')]),
  },
  'RestartPoint',
)

/**
 * Where an operation that failed past its point of no return (epochs raised on the volumes) must be finished:
 * the epoch it raised to and, for a reversal, the final delta set both sides hold.
 *
 * @public
 */
export const ResumePointCodec = t.type({ toEpoch: t.number, finalDeltaSet: t.union([t.number, t.null]) }, 'MirrorResumePoint')

/**
 * An operation under way (its durable workflow id), so a retried call resumes it instead of starting another.
 *
 * @public
 */
export const OperationCodec = t.type(
  {
    kind: t.union([t.literal('failover'), t.literal('resync'), t.literal('failback'), t.literal('swap'), t.literal('delete')]),
    workflowId: t.string,
    previous: MirrorStateNameCodec,
    resume: t.union([ResumePointCodec, t.null]),
  },
  'MirrorOperation',
)

/**
 * A replication relationship as the coordinator records it.
 *
 * @public
 */
export const RelationshipCodec = t.type(
  {
    id: t.string,
    a: VolumeRefCodec,
    b: VolumeRefCodec,
    primary: SideCodec,
    state: MirrorStateNameCodec,
    epoch: t.number,
    cut: CutPolicyCodec,
    playback: PlaybackPolicyCodec,
    transfer: TransferPolicyCodec,
    restartPoint: t.union([RestartPointCodec, t.null]),
    operation: t.union([OperationCodec, t.null]),
    createdAt: t.number,
    updatedAt: t.number,
  },
  'Relationship',
)

/** A side. */
export type Side = t.TypeOf<typeof SideCodec>
/**
 * The state a relationship is in: `stopped`, `replicating`, `failedOver`, or the transitional state of a running
 * operation (`failingOver`, `resyncing`, `reversing`, `deleting`).
 *
 * @public
 */
export type MirrorStateName = t.TypeOf<typeof MirrorStateNameCodec>
/**
 * The restart point a failover left: the side it is on, its held snapshot, the last delta set it holds, the
 * epoch and the failover mode.
 *
 * @public
 */
export type RestartPoint = t.TypeOf<typeof RestartPointCodec>
/** An operation. */
export type MirrorOperation = t.TypeOf<typeof OperationCodec>
/** A resume point. */
export type ResumePoint = t.TypeOf<typeof ResumePointCodec>
/** A relationship. */
export type Relationship = t.TypeOf<typeof RelationshipCodec>

/**
 * The mirror module's state: relationships by id. Plain, serialisable data.
 *
 * @public
 */
export interface MirrorState {
  readonly relationships: Readonly<Record<string, Relationship>>
}

/**
 * Codec of {@link MirrorState}, checked when a saved state is loaded.
 *
 * @public
 */
export const MirrorStateCodec = t.type({ relationships: t.record(t.string, RelationshipCodec) }, 'MirrorState')

const Id = t.type({ id: t.string, at: t.number })

/**
 * The journal events of the mirror coordinator.
 *
 * @public
 */
export const MirrorJournalEventCodec = t.union([
  t.type({ type: t.literal('mirror.created'), data: RelationshipCodec }),
  t.type({ type: t.literal('mirror.started'), data: Id }),
  t.type({ type: t.literal('mirror.stopped'), data: Id }),
  t.type({ type: t.literal('mirror.operationStarted'), data: t.type({ id: t.string, at: t.number, operation: OperationCodec, state: MirrorStateNameCodec }) }),
  t.type({ type: t.literal('mirror.operationFailed'), data: t.type({ id: t.string, at: t.number, epoch: t.number, resume: t.union([ResumePointCodec, t.null]) }) }),
  t.type({ type: t.literal('mirror.failedOver'), data: t.type({ id: t.string, at: t.number, epoch: t.number, primary: SideCodec, restartPoint: RestartPointCodec }) }),
  t.type({ type: t.literal('mirror.resynced'), data: t.type({ id: t.string, at: t.number }) }),
  t.type({ type: t.literal('mirror.reversed'), data: t.type({ id: t.string, at: t.number, epoch: t.number, primary: SideCodec }) }),
  t.type({ type: t.literal('mirror.deleted'), data: Id }),
  t.type({ type: t.literal('mirror.transferChanged'), data: t.type({ id: t.string, at: t.number, transfer: TransferPolicyCodec }) }),
])

/**
 * One decoded journal event.
 *
 * @public
 */
export type MirrorJournalEvent = t.TypeOf<typeof MirrorJournalEventCodec>

/**
 * The empty state.
 *
 * @public
 */
export const emptyMirrorState: MirrorState = { relationships: {} }

type Draft = { relationships: Record<string, Relationship> }

/**
 * Folds one journal event into the state (used with immer).
 *
 * @public
 */
export function reduceMirrorState(draft: Draft, event: MirrorJournalEvent): void {
  if (event.type === 'mirror.created') {
    draft.relationships[event.data.id] = event.data
    return
  }
  const rel = draft.relationships[event.data.id]
  if (rel === undefined) return
  rel.updatedAt = event.data.at
  switch (event.type) {
    case 'mirror.started':
      rel.state = 'replicating'
      return
    case 'mirror.stopped':
      rel.state = 'stopped'
      return
    case 'mirror.operationStarted':
      rel.operation = event.data.operation
      rel.state = event.data.state
      return
    case 'mirror.operationFailed':
      if (event.data.resume === null || rel.operation === null) {
        rel.state = rel.operation?.previous ?? rel.state
        rel.operation = null
      } else {
        rel.operation = { ...rel.operation, workflowId: '', resume: event.data.resume }
      }
      rel.epoch = Math.max(rel.epoch, event.data.epoch)
      return
    case 'mirror.failedOver':
      rel.state = 'failedOver'
      rel.epoch = event.data.epoch
      rel.primary = event.data.primary
      rel.restartPoint = event.data.restartPoint
      rel.operation = null
      return
    case 'mirror.resynced':
      rel.state = 'replicating'
      rel.restartPoint = null
      rel.operation = null
      return
    case 'mirror.reversed':
      rel.state = 'replicating'
      rel.epoch = event.data.epoch
      rel.primary = event.data.primary
      rel.operation = null
      return
    case 'mirror.deleted':
      delete draft.relationships[event.data.id]
      return
    case 'mirror.transferChanged':
      rel.transfer = event.data.transfer
      return
  }
}

/**
 * The volume of side `side`.
 *
 * @public
 */
export function sideOf(rel: Relationship, side: Side): { readonly site: string; readonly volume: string } {
  return side === 'a' ? rel.a : rel.b
}

/**
 * The other side.
 *
 * @public
 */
export function otherSide(side: Side): Side {
  return side === 'a' ? 'b' : 'a'
}
