import { systemClock, type Clock } from './clock.js'
import type { Json } from './codecs.js'
import { FenceGuard, type FenceToken } from './fencing.js'
import type { JournalRecord, NewRecord, StateSnapshot, StateStore } from './state-store.js'
import { decodeAppendInput, decodeReadInput, decodeStreamName, decodeStreamPrefix, decodeSnapshotInput, versionConflict, storeClosed, JournalSubscribers } from './state-store-input.js'

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

/** A frozen copy of `value` as it reads back from JSON text (so `-0` becomes `0`, as in every durable store). */
function frozenJsonCopy(value: Json): Json {
  const copy: unknown = JSON.parse(JSON.stringify(value))
  return deepFreeze(copy as Json)
}

/**
 * A {@link StateStore} kept in memory: deterministic, instant, and lost with the process. For tests, examples
 * and single-run tools. Records and snapshots are stored as frozen JSON copies, so neither the caller that
 * appended them nor a reader can change them afterwards.
 *
 * @public
 */
export class MemoryStateStore implements StateStore {
  /** Always `memory`. */
  readonly kind = 'memory'
  readonly #clock: Clock
  readonly #streams = new Map<string, JournalRecord[]>()
  readonly #snapshots = new Map<string, StateSnapshot>()
  readonly #subscribers = new JournalSubscribers()
  readonly #fences = new FenceGuard('memory state store')
  #closed = false

  /** `clock` stamps the `at` of appended records (default: the system clock). */
  constructor(options: { readonly clock?: Clock } = {}) {
    this.#clock = options.clock ?? systemClock
  }

  /** See {@link StateStore.append}. */
  async append(stream: string, expectedVersion: number, records: readonly NewRecord[]): Promise<number> {
    this.#checkOpen('append')
    const input = decodeAppendInput(stream, expectedVersion, records)
    const existing = this.#streams.get(input.stream)
    const current = existing?.length ?? 0
    if (current !== input.expectedVersion) throw versionConflict(this.kind, input.stream, input.expectedVersion, current)
    const at = this.#clock.now()
    const stored = input.records.map(
      (record, index): JournalRecord =>
        Object.freeze({ stream: input.stream, version: current + index + 1, type: record.type, data: frozenJsonCopy(record.data), at }),
    )
    if (existing === undefined) this.#streams.set(input.stream, stored)
    else existing.push(...stored)
    for (const record of stored) this.#subscribers.publish(record)
    return current + stored.length
  }

  /** See {@link StateStore.read}. */
  async read(stream: string, afterVersion?: number): Promise<readonly JournalRecord[]> {
    this.#checkOpen('read')
    const input = decodeReadInput(stream, afterVersion)
    return (this.#streams.get(input.stream) ?? []).slice(input.afterVersion)
  }

  /** See {@link StateStore.version}. */
  async version(stream: string): Promise<number> {
    this.#checkOpen('version')
    return this.#streams.get(decodeStreamName(stream))?.length ?? 0
  }

  /** See {@link StateStore.listStreams}. */
  async listStreams(prefix: string): Promise<readonly string[]> {
    this.#checkOpen('listStreams')
    const wanted = decodeStreamPrefix(prefix)
    return [...this.#streams.keys()].filter((name) => name.startsWith(wanted)).sort()
  }

  /** See {@link StateStore.subscribe}. */
  subscribe(prefix: string, listener: (record: JournalRecord) => void): () => void {
    this.#checkOpen('subscribe')
    return this.#subscribers.add(decodeStreamPrefix(prefix), listener)
  }

  /** See {@link StateStore.saveSnapshot}. A snapshot older than the one already saved is ignored. */
  async saveSnapshot(snapshot: StateSnapshot): Promise<void> {
    this.#checkOpen('saveSnapshot')
    const input = decodeSnapshotInput(snapshot)
    const saved = this.#snapshots.get(input.stream)
    if (saved !== undefined && saved.version > input.version) return
    this.#snapshots.set(input.stream, Object.freeze({ stream: input.stream, version: input.version, state: frozenJsonCopy(input.state) }))
  }

  /** See {@link StateStore.loadSnapshot}. */
  async loadSnapshot(stream: string): Promise<StateSnapshot | undefined> {
    this.#checkOpen('loadSnapshot')
    return this.#snapshots.get(decodeStreamName(stream))
  }

  /**
   * See {@link StateStore.fence}. Only this process writes a memory store, so no deposed coordinator shares it: a
   * token lower than one bound before is refused with `E_FENCED`, and writes are not checked.
   */
  async fence(token: FenceToken): Promise<void> {
    this.#checkOpen('fence')
    this.#fences.check(token, 'fence')
  }

  /** See {@link StateStore.close}. Closing twice is harmless. */
  async close(): Promise<void> {
    this.#closed = true
    this.#subscribers.clear()
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw storeClosed(this.kind, operation)
  }
}

/**
 * Creates an empty {@link MemoryStateStore}.
 *
 * @public
 */
export function memoryStateStore(options: { readonly clock?: Clock } = {}): MemoryStateStore {
  return new MemoryStateStore(options)
}
