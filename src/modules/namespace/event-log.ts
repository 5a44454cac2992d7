import * as t from 'io-ts'
import { isRight } from 'fp-ts/lib/Either.js'
import { isDrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { Json } from '../../kernel/codecs.js'
import type { AnyEventOf, EventSink, Severity } from '../../kernel/events.js'
import type { JournalRecord, NewRecord, StateStore } from '../../kernel/state-store.js'
import type { NamespaceEvents } from './events.js'

/**
 * One namespace event as delivered, recorded and notified.
 *
 * @public
 */
export type NamespaceEvent = AnyEventOf<NamespaceEvents>

/**
 * A sink for e-mail, SNMP traps, pagers and the like: called with every namespace event (filter by `severity`
 * as you need). Its failures are ignored: a broken notifier never stops monitoring or a failover.
 *
 * @public
 */
export type NamespaceNotifier = (event: NamespaceEvent) => void | Promise<void>

/**
 * Which recorded events `namespace.history` returns: by name, since a time (inclusive), for one link, at or
 * above a severity, and at most `limit` (the newest).
 *
 * @public
 */
export interface HistoryFilter {
  readonly name?: keyof NamespaceEvents
  readonly since?: number
  readonly namespace?: string
  readonly path?: string
  readonly minSeverity?: Severity
  readonly limit?: number
}

const RecordCodec = t.type({
  name: t.string,
  at: t.number,
  severity: t.union([t.literal('info'), t.literal('warning'), t.literal('error'), t.literal('critical')]),
  payload: t.UnknownRecord,
})

const RANK: Readonly<Record<Severity, number>> = { info: 0, warning: 1, error: 2, critical: 3 }
const RECORD_TYPE = 'namespace.event'
const CONFLICT_RETRIES = 5
const TAIL_WINDOW = 256

/**
 * The namespace module's event daemon: publishes each event on the event bus, records it in a state-store
 * stream for `history` queries, and hands it to the notifier. Recording is group-committed: the events emitted
 * in one turn of the event loop, and while an append is in flight, go to the store in one append, so a storm of
 * events costs few appends. A query with a `limit` reads the stream from its tail.
 *
 * @public
 */
export class NamespaceEventLog {
  readonly #store: StateStore
  readonly #stream: string
  readonly #sink: EventSink<NamespaceEvents>
  readonly #clock: Clock
  readonly #notify: NamespaceNotifier | undefined
  readonly #pending: NewRecord[] = []
  #version: number | undefined
  #draining: Promise<void> | undefined

  constructor(deps: { stateStore: StateStore; stream: string; sink: EventSink<NamespaceEvents>; clock: Clock; notify?: NamespaceNotifier }) {
    this.#store = deps.stateStore
    this.#stream = deps.stream
    this.#sink = deps.sink
    this.#clock = deps.clock
    this.#notify = deps.notify
  }

  /** Publishes, records and notifies one event. */
  emit<K extends keyof NamespaceEvents & string>(name: K, severity: Severity, payload: NamespaceEvents[K]): void {
    this.#sink.emit(name, severity, payload)
    const at = this.#clock.now()
    this.#pending.push({ type: RECORD_TYPE, data: { name, at, severity, payload: payload as unknown as Json } })
    if (this.#draining === undefined) {
      this.#draining = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.#drain())
        .finally(() => (this.#draining = undefined))
    }
    if (this.#notify !== undefined) {
      const event = { name, at, severity, payload } as NamespaceEvent
      try {
        void Promise.resolve(this.#notify(event)).catch(() => undefined)
      } catch {
        // A notifier that throws is the notifier's problem; monitoring goes on.
      }
    }
  }

  /** Resolves once every event emitted so far is recorded (or could not be). */
  async flush(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining
  }

  /**
   * Recorded events matching `filter`, oldest first. With a `limit`, only the tail of the stream is read and
   * decoded: a window a few times the limit, widened until it holds enough matches or covers the stream.
   */
  async query(filter: HistoryFilter = {}): Promise<NamespaceEvent[]> {
    await this.flush()
    const limit = filter.limit
    if (limit === undefined) return this.#matching(await this.#store.read(this.#stream), filter)
    const version = await this.#store.version(this.#stream)
    for (let window = Math.max(TAIL_WINDOW, limit * 4); ; window *= 4) {
      const from = Math.max(0, version - window)
      const matching = this.#matching(await this.#store.read(this.#stream, from), filter)
      if (matching.length >= limit || from === 0) return matching.slice(Math.max(0, matching.length - limit))
    }
  }

  #matching(records: readonly JournalRecord[], filter: HistoryFilter): NamespaceEvent[] {
    const matching: NamespaceEvent[] = []
    for (const record of records) {
      const decoded = RecordCodec.decode(record.data)
      if (!isRight(decoded)) continue
      const event = decoded.right
      if (filter.name !== undefined && event.name !== filter.name) continue
      if (filter.since !== undefined && event.at < filter.since) continue
      if (filter.minSeverity !== undefined && RANK[event.severity] < RANK[filter.minSeverity]) continue
      if (filter.namespace !== undefined && event.payload['namespace'] !== filter.namespace) continue
      if (filter.path !== undefined && event.payload['path'] !== filter.path) continue
      matching.push(event as unknown as NamespaceEvent)
    }
    return matching
  }

  async #drain(): Promise<void> {
    let conflicts = 0
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0)
      try {
        const expected = this.#version ?? (await this.#store.version(this.#stream))
        this.#version = await this.#store.append(this.#stream, expected, batch)
        conflicts = 0
      } catch (error) {
        this.#version = undefined
        if (isDrError(error, 'E_CONFLICT') && conflicts++ < CONFLICT_RETRIES) this.#pending.unshift(...batch)
        // Otherwise the batch is lost to the history (the bus and the notifier had it already): a closed or
        // broken state store must not stop monitoring.
      }
    }
  }
}
