import * as t from 'io-ts'
import { enablePatches, produceWithPatches, type Draft, type Patch } from 'immer'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, isDrError } from './errors.js'
import { JsonValue } from './codecs.js'
import type { DrEither } from './either.js'
import type { NewRecord, StateStore } from './state-store.js'

enablePatches()

/**
 * Applies one domain event to a draft of the state. Reducers are pure: they only describe the change.
 *
 * @public
 */
export type Reducer<S, E> = (draft: Draft<S>, event: E) => void

/**
 * A pure decision: given the current state, either refuse with a {@link DrError} or say which events happen.
 *
 * @public
 */
export type Decision<S, E> = (state: S) => DrEither<readonly E[]>

/**
 * Called after each applied event with the new state and the immer patches that produced it.
 *
 * @public
 */
export type StoreListener<S, E> = (state: S, event: E, patches: readonly Patch[]) => void

/**
 * Module state folded from events with immer. The state is immutable (frozen); the only way to change it is
 * `apply(event)`, which records the patches and notifies subscribers.
 *
 * @public
 */
export class Store<S, E> {
  #state: S
  readonly #reducer: Reducer<S, E>
  readonly #listeners = new Set<StoreListener<S, E>>()

  constructor(initial: S, reducer: Reducer<S, E>) {
    this.#state = initial
    this.#reducer = reducer
  }

  /** The current state (read-only). */
  get state(): S {
    return this.#state
  }

  /** Applies an event and returns the patches it produced. */
  apply(event: E): readonly Patch[] {
    const [next, patches] = produceWithPatches(this.#state, (draft: Draft<S>) => {
      this.#reducer(draft, event)
    })
    this.#state = next as S
    for (const listener of this.#listeners) listener(this.#state, event, patches)
    return patches
  }

  /** Replaces the state wholesale (used when loading a saved snapshot). */
  reset(state: S): void {
    this.#state = state
  }

  /** Subscribes to applied events. Returns a function that unsubscribes. */
  subscribe(listener: StoreListener<S, E>): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}

/**
 * How to open a {@link JournaledStore}: where its events live, how to fold them, and the codecs that check
 * every replayed event (and saved state) so that a damaged journal is detected, not trusted.
 *
 * @public
 */
export interface JournaledStoreOptions<S, E extends NewRecord> {
  readonly stateStore: StateStore
  readonly stream: string
  readonly initial: S
  readonly reducer: Reducer<S, E>
  readonly eventCodec: t.Type<E, unknown, unknown>
  /** When given, the state is saved every `snapshotEvery` events and replay starts from the newest save. */
  readonly stateCodec?: t.Type<S, unknown, unknown>
  readonly snapshotEvery?: number
}

/**
 * A {@link Store} whose events are journaled in a {@link StateStore} stream before they become visible. State
 * after a restart is the fold of the journal (from the newest state snapshot when a state codec is given).
 *
 * @public
 */
export class JournaledStore<S, E extends NewRecord> {
  readonly #options: JournaledStoreOptions<S, E>
  readonly #store: Store<S, E>
  #version = 0
  #sinceSnapshot = 0
  /** The tail of this instance's queue: refresh, commit and execute run one at a time. */
  #tail: Promise<unknown> = Promise.resolve()

  private constructor(options: JournaledStoreOptions<S, E>) {
    this.#options = options
    this.#store = new Store(options.initial, options.reducer)
  }

  /** Opens the stream and replays it. Rejects with `E_CORRUPT` when a record or saved state fails its codec. */
  static async open<S, E extends NewRecord>(options: JournaledStoreOptions<S, E>): Promise<JournaledStore<S, E>> {
    const store = new JournaledStore(options)
    await store.#loadSnapshot()
    await store.refresh()
    return store
  }

  /** The current state (read-only). */
  get state(): S {
    return this.#store.state
  }

  /** The stream version the state reflects. */
  get version(): number {
    return this.#version
  }

  /** Subscribes to applied events (replayed ones included). */
  subscribe(listener: StoreListener<S, E>): () => void {
    return this.#store.subscribe(listener)
  }

  /** Applies events appended by others since the last read. */
  refresh(): Promise<void> {
    return this.#exclusive(() => this.#refresh())
  }

  async #refresh(): Promise<void> {
    const records = await this.#options.stateStore.read(this.#options.stream, this.#version)
    for (const record of records) {
      const decoded = this.#options.eventCodec.decode({ type: record.type, data: record.data })
      if (isLeft(decoded)) {
        throw new DrError('E_CORRUPT', `journal record ${record.version} of "${record.stream}" is not a valid ${record.type} event`, {
          stream: record.stream,
          version: record.version,
          type: record.type,
        })
      }
      this.#store.apply(decoded.right)
      this.#version = record.version
    }
  }

  /**
   * Journals `events` (expecting the stream to be at the version this store has seen) and then applies them.
   * Rejects with `E_CONFLICT`, changing nothing, when another writer appended first.
   */
  commit(events: readonly E[]): Promise<void> {
    return this.#exclusive(() => this.#commit(events))
  }

  async #commit(events: readonly E[]): Promise<void> {
    if (events.length === 0) return
    const version = await this.#options.stateStore.append(this.#options.stream, this.#version, events)
    for (const event of events) this.#store.apply(event)
    this.#version = version
    this.#sinceSnapshot += events.length
    await this.#maybeSnapshot()
  }

  /**
   * Runs a pure decision against the current state and commits its events. Decisions of one process run one at a
   * time, so they never conflict with each other; on an append by another process the store catches up and
   * decides again (up to `attempts` times), so decisions always see the latest state.
   */
  execute(decide: Decision<S, E>, attempts = 5): Promise<readonly E[]> {
    return this.#exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        const decision = decide(this.state)
        if (isLeft(decision)) throw decision.left
        try {
          await this.#commit(decision.right)
          return decision.right
        } catch (error) {
          if (!isDrError(error, 'E_CONFLICT') || attempt >= attempts) throw error
          await this.#refresh()
        }
      }
    })
  }

  /** Runs `work` after everything queued before it on this instance, whatever their outcome. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work, work)
    this.#tail = run.catch(() => undefined)
    return run
  }

  async #loadSnapshot(): Promise<void> {
    const codec = this.#options.stateCodec
    if (codec === undefined) return
    const saved = await this.#options.stateStore.loadSnapshot(this.#options.stream)
    if (saved === undefined) return
    const decoded = codec.decode(saved.state)
    if (isLeft(decoded)) {
      throw new DrError('E_CORRUPT', `saved state of "${this.#options.stream}" at version ${saved.version} is invalid`, {
        stream: this.#options.stream,
        version: saved.version,
      })
    }
    this.#store.reset(decoded.right)
    this.#version = saved.version
  }

  async #maybeSnapshot(): Promise<void> {
    const { stateCodec, snapshotEvery } = this.#options
    if (stateCodec === undefined || snapshotEvery === undefined || this.#sinceSnapshot < snapshotEvery) return
    this.#sinceSnapshot = 0
    const encoded = stateCodec.encode(this.state)
    if (!JsonValue.is(encoded)) {
      throw new DrError('E_INTERNAL', `state of "${this.#options.stream}" does not encode to JSON`, { stream: this.#options.stream })
    }
    await this.#options.stateStore.saveSnapshot({ stream: this.#options.stream, version: this.#version, state: encoded })
  }
}
