import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import type { TransferPolicy } from './session-record.js'
import type { MirrorJournalEvent, MirrorOperation, MirrorState, MirrorStateName, Relationship, RestartPoint, ResumePoint, Side } from './state.js'

type Decided = DrEither<readonly MirrorJournalEvent[]>

function notFound(id: string): DrError {
  return new DrError('E_NOT_FOUND', `mirror "${id}" does not exist`, { id })
}

function inState(rel: Relationship, action: string, allowed: readonly MirrorStateName[]): DrError | undefined {
  if (allowed.includes(rel.state)) return undefined
  const busy = rel.operation === null ? '' : ` (a ${rel.operation.kind} is in progress)`
  return new DrError('E_PRECONDITION', `mirror "${rel.id}" is ${rel.state}${busy}; ${action} needs ${allowed.join(' or ')}`, {
    id: rel.id,
    state: rel.state,
    allowed,
  })
}

/**
 * Decides to record a new relationship: refused when the id exists, when both sides are the same volume, or when
 * either volume already belongs to another relationship (one relationship per volume).
 *
 * @public
 */
export function decideCreate(state: MirrorState, rel: Relationship): Decided {
  if (state.relationships[rel.id] !== undefined) return E.left(new DrError('E_CONFLICT', `mirror "${rel.id}" already exists`, { id: rel.id }))
  if (rel.a.site === rel.b.site && rel.a.volume === rel.b.volume) {
    return E.left(new DrError('E_INVALID_INPUT', `mirror "${rel.id}": source and destination are the same volume`, { id: rel.id }))
  }
  for (const other of Object.values(state.relationships)) {
    for (const mine of [rel.a, rel.b]) {
      for (const theirs of [other.a, other.b]) {
        if (mine.site === theirs.site && mine.volume === theirs.volume) {
          return E.left(new DrError('E_CONFLICT', `volume ${mine.site}/${mine.volume} already belongs to mirror "${other.id}"`, { id: other.id, ...mine }))
        }
      }
    }
  }
  return E.right([{ type: 'mirror.created', data: rel }])
}

/**
 * Decides to start replicating: from `stopped`; a relationship already replicating decides nothing.
 *
 * @public
 */
export function decideStart(state: MirrorState, id: string, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  if (rel.state === 'replicating') return E.right([])
  const refused = inState(rel, 'start', ['stopped'])
  return refused === undefined ? E.right([{ type: 'mirror.started', data: { id, at } }]) : E.left(refused)
}

/**
 * Decides to stop replicating: from `replicating`; a stopped relationship decides nothing.
 *
 * @public
 */
export function decideStop(state: MirrorState, id: string, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  if (rel.state === 'stopped') return E.right([])
  const refused = inState(rel, 'stop', ['replicating'])
  return refused === undefined ? E.right([{ type: 'mirror.stopped', data: { id, at } }]) : E.left(refused)
}

const OPERATION_RULES: Readonly<Record<MirrorOperation['kind'], { readonly from: readonly MirrorStateName[]; readonly to: MirrorStateName }>> = {
  failover: { from: ['replicating', 'stopped'], to: 'failingOver' },
  resync: { from: ['failedOver'], to: 'resyncing' },
  failback: { from: ['replicating'], to: 'reversing' },
  swap: { from: ['replicating'], to: 'reversing' },
  delete: { from: ['stopped', 'replicating', 'failedOver'], to: 'deleting' },
}

/**
 * Decides to begin a long operation (failover, resync, failback, swap, delete) as durable workflow `workflowId`:
 * checks the state it needs, and for failback that the relationship runs in reverse.
 *
 * @public
 */
export function decideBeginOperation(state: MirrorState, id: string, kind: MirrorOperation['kind'], workflowId: string, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  const pending = rel.operation
  if (pending !== null) {
    if (pending.kind !== kind || pending.resume === null || pending.workflowId !== '') {
      return E.left(new DrError('E_CONFLICT', `mirror "${id}": a ${pending.kind} is in progress`, { id, operation: pending.kind }))
    }
    return E.right([{ type: 'mirror.operationStarted', data: { id, at, operation: { ...pending, workflowId }, state: rel.state } }])
  }
  const rule = OPERATION_RULES[kind]
  const refused = inState(rel, kind, rule.from)
  if (refused !== undefined) return E.left(refused)
  if (kind === 'failback' && rel.primary === 'a') {
    return E.left(new DrError('E_PRECONDITION', `mirror "${id}" already replicates from its original source; use swap to reverse it`, { id }))
  }
  return E.right([{ type: 'mirror.operationStarted', data: { id, at, operation: { kind, workflowId, previous: rel.state, resume: null }, state: rule.to } }])
}

/**
 * Decides that the operation under way failed. Before its point of no return (after its compensations) the
 * relationship returns to the state it had; past it (`resume` given) it stays in the operation's state, and
 * re-issuing the same operation finishes it from `resume`. The highest epoch any side saw is kept.
 *
 * @public
 */
export function decideOperationFailed(state: MirrorState, id: string, epoch: number, resume: ResumePoint | null, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined || rel.operation === null) return E.right([])
  return E.right([{ type: 'mirror.operationFailed', data: { id, at, epoch, resume } }])
}

/** `E_FENCED` when an outcome is stamped with an epoch older than the relationship's: epochs never go back. */
function staleEpoch(rel: Relationship, epoch: number): DrError | undefined {
  if (epoch >= rel.epoch) return undefined
  return new DrError('E_FENCED', `mirror "${rel.id}" is at epoch ${rel.epoch}; an outcome at epoch ${epoch} is stale`, { id: rel.id, epoch, current: rel.epoch })
}

/**
 * Decides the outcome of a failover (idempotent: a relationship already failed over decides nothing). An outcome
 * older than the relationship's epoch is refused with `E_FENCED`.
 *
 * @public
 */
export function decideFailedOver(state: MirrorState, id: string, epoch: number, primary: Side, restartPoint: RestartPoint, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  if (rel.state !== 'failingOver') return E.right([])
  const stale = staleEpoch(rel, epoch)
  if (stale !== undefined) return E.left(stale)
  return E.right([{ type: 'mirror.failedOver', data: { id, at, epoch, primary, restartPoint } }])
}

/**
 * Decides the outcome of a resync (idempotent).
 *
 * @public
 */
export function decideResynced(state: MirrorState, id: string, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  if (rel.state !== 'resyncing') return E.right([])
  return E.right([{ type: 'mirror.resynced', data: { id, at } }])
}

/**
 * Decides the outcome of a failback or swap (idempotent). An outcome older than the relationship's epoch is
 * refused with `E_FENCED`.
 *
 * @public
 */
export function decideReversed(state: MirrorState, id: string, epoch: number, primary: Side, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  if (rel.state !== 'reversing') return E.right([])
  const stale = staleEpoch(rel, epoch)
  if (stale !== undefined) return E.left(stale)
  return E.right([{ type: 'mirror.reversed', data: { id, at, epoch, primary } }])
}

/**
 * Decides to change how a relationship transfers (its bandwidth limit): in any state but `deleting`; the same
 * policy again decides nothing.
 *
 * @public
 */
export function decideTransferChanged(state: MirrorState, id: string, transfer: TransferPolicy, at: number): Decided {
  const rel = state.relationships[id]
  if (rel === undefined) return E.left(notFound(id))
  if (rel.state === 'deleting') return E.left(new DrError('E_PRECONDITION', `mirror "${id}" is being deleted; its transfer cannot change`, { id, state: rel.state }))
  if (sameTransfer(rel.transfer, transfer)) return E.right([])
  return E.right([{ type: 'mirror.transferChanged', data: { id, at, transfer } }])
}

/**
 * True when two transfer policies are the same.
 *
 * @public
 */
export function sameTransfer(a: TransferPolicy, b: TransferPolicy): boolean {
  return (
    a.chunkBytes === b.chunkBytes &&
    a.retries === b.retries &&
    a.stagingMaxBytes === b.stagingMaxBytes &&
    a.bandwidthBytesPerSecond === b.bandwidthBytesPerSecond &&
    a.backlogMaxBytes === b.backlogMaxBytes
  )
}

/**
 * Decides that a relationship is gone (idempotent).
 *
 * @public
 */
export function decideDeleted(state: MirrorState, id: string, at: number): Decided {
  return E.right(state.relationships[id] === undefined ? [] : [{ type: 'mirror.deleted', data: { id, at } }])
}

/**
 * Decides whether a delta from delta set (or snapshot index) `from` to `to` can be computed: only forward
 * (`to > from`); a delta from M ≤ L is an error and nothing is sent.
 *
 * @public
 */
export function planDelta(from: number | null, to: number): DrEither<{ readonly from: number | null; readonly to: number }> {
  if (!Number.isSafeInteger(to) || to < 0 || (from !== null && (!Number.isSafeInteger(from) || from < 0))) {
    return E.left(new DrError('E_INVALID_INPUT', `delta ${from ?? 'null'} → ${to}: delta-set numbers must be non-negative integers`, { from, to }))
  }
  if (from !== null && to <= from) {
    return E.left(new DrError('E_INVALID_INPUT', `delta ${from} → ${to}: the target must come after the base`, { from, to }))
  }
  return E.right({ from, to })
}
