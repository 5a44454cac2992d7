import { EventEmitter } from 'eventemitter3'

/**
 * How much an event matters: `info` is routine, `warning` needs a look, `error` means an operation failed,
 * `critical` means data or availability is at risk now.
 *
 * @public
 */
export type Severity = 'info' | 'warning' | 'error' | 'critical'

/**
 * One event as users receive it: a `module.pastTense` name, when it happened (ms since the epoch, from the
 * system clock), its severity and a typed payload.
 *
 * @public
 */
export interface DrEvent<Name extends string = string, Payload = unknown> {
  readonly name: Name
  readonly at: number
  readonly severity: Severity
  readonly payload: Payload
}

/**
 * The listener for event `K` of map `M`.
 *
 * @public
 */
export type EventListener<M extends object, K extends keyof M & string> = (event: DrEvent<K, M[K]>) => void

/**
 * Any event of map `M`, as a discriminated union on `name`.
 *
 * @public
 */
export type AnyEventOf<M extends object> = { [K in keyof M & string]: DrEvent<K, M[K]> }[keyof M & string]

/**
 * The publishing half of an event bus, which is all a module or workflow needs. An `EventBus` of a larger
 * map (the whole system's) is an `EventSink` of any part of it.
 *
 * @public
 */
export interface EventSink<M extends object> {
  emit<K extends keyof M & string>(name: K, severity: Severity, payload: M[K]): unknown
}

/**
 * A typed event bus over an event map — an object type from event name to payload type, e.g.
 * `{ 'mirror.failedOver': { restartPoint: string } }`. Subscribe per name with `on/once/off`, to every event with `onAny`, or consume events as
 * an async iterator (`for await (const e of bus.stream())`), which buffers events until they are read and
 * ends when the bus closes or the signal aborts.
 *
 * @public
 */
export class EventBus<M extends object> implements EventSink<M> {
  readonly #emitter = new EventEmitter()
  readonly #now: () => number
  #closed = false

  /** @param now - the clock that stamps events (ms since the epoch) */
  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Listens to every event named `name` until `off`. Returns a function that unsubscribes. */
  on<K extends keyof M & string>(name: K, listener: EventListener<M, K>): () => void {
    this.#emitter.on(name, guarded(listener))
    return () => this.off(name, listener)
  }

  /** Listens to the next event named `name` only. */
  once<K extends keyof M & string>(name: K, listener: EventListener<M, K>): () => void {
    this.#emitter.once(name, guarded(listener))
    return () => this.off(name, listener)
  }

  /** Removes a listener added with `on` or `once`. */
  off<K extends keyof M & string>(name: K, listener: EventListener<M, K>): void {
    this.#emitter.off(name, guarded(listener))
  }

  /** Listens to every event, whatever its name. Returns a function that unsubscribes. */
  onAny(listener: (event: AnyEventOf<M>) => void): () => void {
    this.#emitter.on(ANY, guarded(listener))
    return () => this.#emitter.off(ANY, guarded(listener))
  }

  /**
   * Publishes an event, stamped with the bus clock. A listener that throws does not stop the others or the
   * emitter: drkit never lets a user's listener break a workflow.
   */
  emit<K extends keyof M & string>(name: K, severity: Severity, payload: M[K]): DrEvent<K, M[K]> {
    const event: DrEvent<K, M[K]> = { name, at: this.#now(), severity, payload }
    if (this.#closed) return event
    this.#emitter.emit(name, event)
    this.#emitter.emit(ANY, event)
    return event
  }

  /**
   * Every event from now on, as an async iterator. Events are buffered until read; iteration ends when the
   * bus is closed or `signal` aborts.
   */
  stream(options: { signal?: AbortSignal } = {}): AsyncIterableIterator<AnyEventOf<M>> {
    const buffer: AnyEventOf<M>[] = []
    let wake: (() => void) | undefined
    let done = false
    const finish = (): void => {
      done = true
      unsubscribe()
      this.#emitter.off(CLOSE, finish)
      options.signal?.removeEventListener('abort', finish)
      wake?.()
    }
    const unsubscribe = this.onAny((event) => {
      buffer.push(event)
      wake?.()
    })
    this.#emitter.once(CLOSE, finish)
    options.signal?.addEventListener('abort', finish, { once: true })
    if (this.#closed || options.signal?.aborted === true) finish()
    const iterator: AsyncIterableIterator<AnyEventOf<M>> = {
      next: async (): Promise<IteratorResult<AnyEventOf<M>>> => {
        for (;;) {
          const event = buffer.shift()
          if (event !== undefined) return { value: event, done: false }
          if (done) return { value: undefined, done: true }
          await new Promise<void>((resolve) => (wake = resolve))
          wake = undefined
        }
      },
      return: async (): Promise<IteratorResult<AnyEventOf<M>>> => {
        finish()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  /** Number of listeners for `name` (or all names). */
  listenerCount(name?: keyof M & string): number {
    if (name !== undefined) return this.#emitter.listenerCount(name)
    return this.#emitter.eventNames().reduce((sum, n) => sum + (n === CLOSE ? 0 : this.#emitter.listenerCount(n)), 0)
  }

  /** Stops delivery, ends every stream and removes every listener. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#emitter.emit(CLOSE)
    this.#emitter.removeAllListeners()
  }
}

const ANY = Symbol('drkit.any')
const guards = new WeakMap<(event: never) => void, (event: unknown) => void>()

/** The same listener always maps to the same wrapper, so `off` finds what `on` added. */
function guarded<E>(listener: (event: E) => void): (event: unknown) => void {
  const key = listener as (event: never) => void
  let wrapper = guards.get(key)
  if (wrapper === undefined) {
    wrapper = (event: unknown): void => {
      try {
        listener(event as E)
      } catch {
        // A listener's failure is the listener's business; the bus keeps delivering.
      }
    }
    guards.set(key, wrapper)
  }
  return wrapper
}
const CLOSE = Symbol('drkit.close')
