import * as t from 'io-ts'
import { DrError } from './errors.js'
import { JsonValue, NonNegativeInt } from './codecs.js'
import { decode } from './decode.js'
import type { JournalRecord, NewRecord, StateSnapshot, StateStore } from './state-store.js'

const MAX_NAME_LENGTH = 1024
const NOT_IN_A_STREAM_NAME = /[\u0000-\u001f\u007f]|\p{Cs}/u

const isStreamName = (u: unknown): u is string =>
  typeof u === 'string' && u.length > 0 && u.length <= MAX_NAME_LENGTH && !NOT_IN_A_STREAM_NAME.test(u)

/**
 * Codec for a journal stream name: 1–1024 characters, no control characters and no unpaired surrogates, so
 * that a name survives UTF-8 storage unchanged. `workflow/<id>` and `snapshot/catalog` are typical names.
 *
 * @public
 */
export const StreamName = new t.Type<string, string, unknown>(
  'StreamName (1-1024 characters, no control characters)',
  isStreamName,
  (u, c) => (isStreamName(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const isRecordType = (u: unknown): u is string => typeof u === 'string' && u.length > 0 && u.length <= MAX_NAME_LENGTH
const RecordType = new t.Type<string, string, unknown>(
  'RecordType (1-1024 characters)',
  isRecordType,
  (u, c) => (isRecordType(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const isPrefix = (u: unknown): u is string => typeof u === 'string' && u.length <= MAX_NAME_LENGTH
const StreamPrefix = new t.Type<string, string, unknown>(
  'StreamPrefix (a string of at most 1024 characters)',
  isPrefix,
  (u, c) => (isPrefix(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const NewRecordCodec = t.type({ type: RecordType, data: JsonValue }, 'NewRecord')
const NewRecordList = t.array(NewRecordCodec)
const NewRecords = new t.Type<readonly NewRecord[], unknown, unknown>(
  'NewRecords (a non-empty array of { type, data })',
  (u): u is readonly NewRecord[] => NewRecordList.is(u) && u.length > 0,
  (u, c) => (Array.isArray(u) && u.length === 0 ? t.failure(u, c, 'at least one record') : NewRecordList.validate(u, c)),
  t.identity,
)

const AppendInput = t.type({ stream: StreamName, expectedVersion: NonNegativeInt, records: NewRecords })
const ReadInput = t.type({ stream: StreamName, afterVersion: NonNegativeInt })
const SnapshotInput = t.type({ stream: StreamName, version: NonNegativeInt, state: JsonValue }, 'StateSnapshot')

/**
 * Decodes like {@link decode}, and also turns a value that cannot even be walked (a circular structure, nesting
 * too deep for the stack) into `E_INVALID_INPUT` instead of letting a RangeError escape.
 */
function decodeInput<A, O>(codec: t.Type<A, O, unknown>, input: unknown, what: string): A {
  try {
    return decode(codec, input, what)
  } catch (error) {
    if (error instanceof DrError) throw error
    const reason = error instanceof Error ? error.message : String(error)
    throw new DrError('E_INVALID_INPUT', `invalid ${what}: not plain JSON data (${reason})`, { what }, { cause: error })
  }
}

/**
 * Checks the arguments of {@link StateStore.append} and returns them typed; rejects with `E_INVALID_INPUT`
 * (naming the field) before anything is written. Shared by every shipped StateStore so they refuse alike.
 *
 * @public
 */
export function decodeAppendInput(
  stream: unknown,
  expectedVersion: unknown,
  records: unknown,
): { readonly stream: string; readonly expectedVersion: number; readonly records: readonly NewRecord[] } {
  return decodeInput(AppendInput, { stream, expectedVersion, records }, 'StateStore.append input')
}

/**
 * Checks the arguments of {@link StateStore.read} (`afterVersion` defaults to 0); rejects with `E_INVALID_INPUT`.
 *
 * @public
 */
export function decodeReadInput(stream: unknown, afterVersion: unknown = 0): { readonly stream: string; readonly afterVersion: number } {
  return decodeInput(ReadInput, { stream, afterVersion }, 'StateStore.read input')
}

/**
 * Checks a stream name given to {@link StateStore.version} or {@link StateStore.loadSnapshot}.
 *
 * @public
 */
export function decodeStreamName(stream: unknown): string {
  return decodeInput(StreamName, stream, 'stream name')
}

/**
 * Checks a prefix given to {@link StateStore.listStreams} or {@link StateStore.subscribe} (the empty string
 * matches every stream).
 *
 * @public
 */
export function decodeStreamPrefix(prefix: unknown): string {
  return decodeInput(StreamPrefix, prefix, 'stream prefix')
}

/**
 * Checks a snapshot given to {@link StateStore.saveSnapshot}; rejects with `E_INVALID_INPUT`.
 *
 * @public
 */
export function decodeSnapshotInput(snapshot: unknown): StateSnapshot {
  return decodeInput(SnapshotInput, snapshot, 'StateStore.saveSnapshot input')
}

/**
 * The `E_CONFLICT` a StateStore rejects an append with when the stream is not at the expected version.
 *
 * @public
 */
export function versionConflict(kind: string, stream: string, expectedVersion: number, actualVersion: number): DrError {
  return new DrError(
    'E_CONFLICT',
    `${kind} state store: stream "${stream}" is at version ${actualVersion}, not the expected ${expectedVersion}`,
    { store: kind, stream, expectedVersion, actualVersion },
  )
}

/**
 * The `E_CLOSED` a StateStore rejects every call with once it has been closed.
 *
 * @public
 */
export function storeClosed(kind: string, operation: string): DrError {
  return new DrError('E_CLOSED', `${kind} state store is closed (${operation})`, { store: kind, operation })
}

interface Subscription {
  readonly prefix: string
  readonly listener: (record: JournalRecord) => void
  active: boolean
}

/**
 * The listeners of a StateStore, by stream prefix. A listener that throws neither stops the others nor fails
 * the append that triggered it (the same rule as the event bus).
 *
 * @public
 */
export class JournalSubscribers {
  readonly #subscriptions = new Set<Subscription>()

  /** Registers `listener` for streams starting with `prefix`; returns a function that unsubscribes. */
  add(prefix: string, listener: (record: JournalRecord) => void): () => void {
    if (typeof listener !== 'function') {
      throw new DrError('E_INVALID_INPUT', 'invalid StateStore.subscribe input: listener must be a function', { what: 'listener' })
    }
    const subscription: Subscription = { prefix, listener, active: true }
    this.#subscriptions.add(subscription)
    return () => {
      subscription.active = false
      this.#subscriptions.delete(subscription)
    }
  }

  /** True when at least one listener would receive records of `stream` (so callers can skip building them). */
  wants(stream: string): boolean {
    for (const subscription of this.#subscriptions) if (stream.startsWith(subscription.prefix)) return true
    return false
  }

  /** Delivers `record` to every listener whose prefix matches, in subscription order. */
  publish(record: JournalRecord): void {
    for (const subscription of [...this.#subscriptions]) {
      if (!subscription.active || !record.stream.startsWith(subscription.prefix)) continue
      try {
        subscription.listener(record)
      } catch {
        // A listener's failure is the listener's business; the journal keeps delivering.
      }
    }
  }

  /** Drops every listener (on close). */
  clear(): void {
    for (const subscription of this.#subscriptions) subscription.active = false
    this.#subscriptions.clear()
  }
}


