import * as t from 'io-ts'
import { enablePatches, produce, produceWithPatches, type Draft, type Patch } from 'immer'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, isDrError } from './errors.js'
import { JsonValue } from './codecs.js'
import type { DrEither } from './either.js'
import type { JournalRecord, NewRecord, StateStore } from './state-store.js'

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
 * Called once per journal append this store makes or replays, with the events of that append in order and the
 * state after all of them. Unlike a {@link StoreListener} it costs no per-event state or patches.
 *
 * @public
 */
export type CommitListener<S, E> = (events: readonly E[], state: S) => void

/**
 * How to open a {@link JournaledStore}: where its events live, how to fold them, and the codecs that check
 * every replayed event (and saved state) so that a damaged journal is detected, not trusted.
 *
 * `sharedDraft` lets the decisions of one group commit run against one shared immer draft, so that a batch of
 * many small decisions costs one copy-on-write pass instead of one per event. Only for decisions that never keep
 * a reference to the state they are given beyond their call (their events are copied out of the draft).
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
  readonly sharedDraft?: boolean
  /**
   * When true, a batch waits for the end of the current turn of the event loop before it is decided, so that the
   * decisions made in that turn join it even when the journal appends at once (a memory journal). Each decision
   * then waits one turn longer; a storm of decisions costs far fewer batches.
   */
  readonly gather?: boolean
  /** At most this many queued decisions are folded into one append (default 1024). */
  readonly maxBatch?: number
}

interface Queued<S, E> {
  readonly decide: Decision<S, E>
  readonly attempts: number
  tries: number
  readonly resolve: (events: readonly E[]) => void
  readonly reject: (error: unknown) => void
}

/** A batch folded ahead of its append: the state after it, its events, and each decision's own events. */
interface Folded<S, E> {
  readonly state: S
  readonly events: readonly E[]
  readonly steps: ReadonlyArray<readonly [S, E, readonly Patch[]]>
  readonly outcomes: ReadonlyArray<{ readonly ok: true; readonly events: readonly E[] } | { readonly ok: false; readonly error: unknown }>
}

const NO_PATCHES: readonly Patch[] = []

/**
 * A {@link Store} whose events are journaled in a {@link StateStore} stream before they become visible. State
 * after a restart is the fold of the journal (from the newest state snapshot when a state codec is given).
 *
 * Decisions are group-committed: every decision queued while an append is in flight is decided in turn (each
 * sees the ones before it), and their events go to the journal in one append. A failed append rejects every
 * decision of its batch and changes no state. Immer patches are computed only while a {@link StoreListener} is
 * subscribed.
 *
 * @public
 */
export class JournaledStore<S, E extends NewRecord> {
  readonly #options: JournaledStoreOptions<S, E>
  readonly #listeners = new Set<StoreListener<S, E>>()
  readonly #commitListeners = new Set<CommitListener<S, E>>()
  #state: S
  #version = 0
  #sinceSnapshot = 0
  /** The batch that decisions queued now join; undefined once its drain has started. */
  #open: Array<Queued<S, E>> | undefined
  /** The tail of this instance's queue: refresh, commit and each batch run one at a time. */
  #tail: Promise<unknown> = Promise.resolve()

  private constructor(options: JournaledStoreOptions<S, E>) {
    this.#options = options
    this.#state = options.initial
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
    return this.#state
  }

  /** The stream version the state reflects. */
  get version(): number {
    return this.#version
  }

  /** Subscribes to applied events (replayed ones included), each with the state after it and its patches. */
  subscribe(listener: StoreListener<S, E>): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Subscribes to appends (replayed ones included): their events and the state after them. */
  onCommitted(listener: CommitListener<S, E>): () => void {
    this.#commitListeners.add(listener)
    return () => this.#commitListeners.delete(listener)
  }

  /** Applies events appended by others since the last read. */
  refresh(): Promise<void> {
    this.#open = undefined
    return this.#exclusive(() => this.#refresh())
  }

  async #refresh(): Promise<void> {
    const records = await this.#options.stateStore.read(this.#options.stream, this.#version)
    const events: E[] = []
    let damaged: DrError | undefined
    let last = this.#version
    for (const record of records) {
      const decoded = this.#options.eventCodec.decode({ type: record.type, data: record.data })
      if (isLeft(decoded)) {
        damaged = corrupt(record)
        break
      }
      events.push(decoded.right)
      last = record.version
    }
    if (events.length > 0) this.#install(this.#fold(this.#state, events), last, 0)
    if (damaged !== undefined) throw damaged
  }

  /**
   * Journals `events` (expecting the stream to be at the version this store has seen) and then applies them.
   * Rejects with `E_CONFLICT`, changing nothing, when another writer appended first.
   */
  commit(events: readonly E[]): Promise<void> {
    this.#open = undefined
    return this.#exclusive(async () => {
      if (events.length === 0) return
      const folded = this.#fold(this.#state, events)
      const version = await this.#options.stateStore.append(this.#options.stream, this.#version, events)
      this.#install(folded, version, events.length)
      await this.#maybeSnapshot()
    })
  }

  /**
   * Runs a pure decision against the current state and commits its events. Decisions of one process never
   * conflict with each other: they are decided one after another, each seeing the events of those before it,
   * and committed in groups. On an append by another process the store catches up and decides again (up to
   * `attempts` times), so decisions always see the latest state.
   */
  execute(decide: Decision<S, E>, attempts = 5): Promise<readonly E[]> {
    return new Promise<readonly E[]>((resolve, reject) => {
      let batch = this.#open
      if (batch === undefined || batch.length >= (this.#options.maxBatch ?? 1024)) {
        const fresh: Array<Queued<S, E>> = []
        this.#open = batch = fresh
        const turn = this.#options.gather === true ? new Promise<void>((resolve) => setImmediate(resolve)) : undefined
        void this.#exclusive(async () => {
          await turn
          await this.#drain(fresh)
        })
      }
      batch.push({ decide, attempts, tries: 0, resolve, reject })
    })
  }

  /** Decides, appends and settles one batch; never rejects (each caller's promise carries its outcome). */
  async #drain(batch: Array<Queued<S, E>>): Promise<void> {
    if (this.#open === batch) this.#open = undefined
    let pending = batch
    while (pending.length > 0) {
      for (const queued of pending) queued.tries += 1
      const folded = this.#decideAll(pending)
      const committed: Array<{ queued: Queued<S, E>; events: readonly E[] }> = []
      pending.forEach((queued, i) => {
        const outcome = folded.outcomes[i]
        if (outcome === undefined || !outcome.ok) queued.reject(outcome?.error)
        else committed.push({ queued, events: outcome.events })
      })
      if (folded.events.length > 0) {
        let version: number
        try {
          version = await this.#options.stateStore.append(this.#options.stream, this.#version, folded.events)
        } catch (error) {
          pending = await this.#afterFailedAppend(committed, error)
          continue
        }
        try {
          this.#install(folded, version, folded.events.length)
        } catch (listenerError) {
          for (const { queued } of committed) queued.reject(listenerError)
          return
        }
      }
      for (const { queued, events } of committed) queued.resolve(events)
      // A state snapshot only shortens replays; failing to save one loses nothing that was committed.
      await this.#maybeSnapshot().catch(() => undefined)
      return
    }
  }

  /** After a failed append: on a conflict, catches up and returns the decisions to try again; otherwise rejects them all. */
  async #afterFailedAppend(committed: ReadonlyArray<{ queued: Queued<S, E> }>, error: unknown): Promise<Array<Queued<S, E>>> {
    const again: Array<Queued<S, E>> = []
    for (const { queued } of committed) {
      if (isDrError(error, 'E_CONFLICT') && queued.tries < queued.attempts) again.push(queued)
      else queued.reject(error)
    }
    if (again.length === 0) return again
    try {
      await this.#refresh()
      return again
    } catch (refreshError) {
      for (const queued of again) queued.reject(refreshError)
      return []
    }
  }

  /** Decides every queued decision in turn against the state the ones before it leave. Never throws. */
  #decideAll(pending: ReadonlyArray<Queued<S, E>>): Folded<S, E> {
    if (this.#options.sharedDraft === true && this.#listeners.size === 0) {
      try {
        return this.#decideInDraft(pending)
      } catch {
        // A reducer threw mid-batch: fold decision by decision instead, so only that decision fails.
      }
    }
    let state = this.#state
    const events: E[] = []
    const steps: Array<readonly [S, E, readonly Patch[]]> = []
    const outcomes: Array<Folded<S, E>['outcomes'][number]> = []
    for (const queued of pending) {
      try {
        const decision = queued.decide(state)
        if (isLeft(decision)) throw decision.left
        const folded = this.#fold(state, decision.right)
        state = folded.state
        events.push(...decision.right)
        steps.push(...folded.steps)
        outcomes.push({ ok: true, events: decision.right })
      } catch (error) {
        outcomes.push({ ok: false, error })
      }
    }
    return { state, events, steps, outcomes }
  }

  #decideInDraft(pending: ReadonlyArray<Queued<S, E>>): Folded<S, E> {
    const events: E[] = []
    const outcomes: Array<Folded<S, E>['outcomes'][number]> = []
    const state = produce(this.#state, (draft: Draft<S>) => {
      for (const queued of pending) {
        let decided: readonly E[]
        try {
          const decision = queued.decide(draft as S)
          if (isLeft(decision)) throw decision.left
          decided = decision.right.map(ownCopy)
        } catch (error) {
          outcomes.push({ ok: false, error })
          continue
        }
        for (const event of decided) this.#options.reducer(draft, ownCopy(event))
        events.push(...decided)
        outcomes.push({ ok: true, events: decided })
      }
    }) as S
    return { state, events, steps: [], outcomes }
  }

  /**
   * Folds `events` into `state` without installing them: one immer pass unless a listener wants each step. In one
   * pass a reducer may keep an object of one event in the draft and change it for a later one, so each event is
   * handed over as a private copy: the journaled events are never changed.
   */
  #fold(state: S, events: readonly E[]): Folded<S, E> {
    if (this.#listeners.size === 0) {
      const next = produce(state, (draft: Draft<S>) => {
        for (const event of events) this.#options.reducer(draft, ownCopy(event))
      }) as S
      return { state: next, events, steps: [], outcomes: [] }
    }
    const steps: Array<readonly [S, E, readonly Patch[]]> = []
    let current = state
    for (const event of events) {
      const [next, patches] = produceWithPatches(current, (draft: Draft<S>) => {
        this.#options.reducer(draft, event)
      })
      current = next as S
      steps.push([current, event, patches])
    }
    return { state: current, events, steps, outcomes: [] }
  }

  /** Makes a folded batch visible at `version` and tells the listeners. */
  #install(folded: Folded<S, E>, version: number, appended: number): void {
    this.#state = folded.state
    this.#version = version
    this.#sinceSnapshot += appended
    for (const [state, event, patches] of folded.steps) for (const listener of this.#listeners) listener(state, event, patches)
    if (folded.steps.length === 0 && this.#listeners.size > 0) {
      for (const event of folded.events) for (const listener of this.#listeners) listener(folded.state, event, NO_PATCHES)
    }
    for (const listener of this.#commitListeners) listener(folded.events, folded.state)
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
    this.#state = decoded.right
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

/**
 * A deep, unfrozen copy of an event: what a reducer folding several events in one immer pass may keep and change
 * (and, for a decision made against a draft, a copy that no longer refers to the draft).
 */
function ownCopy<E>(event: E): E {
  return JSON.parse(JSON.stringify(event)) as E
}

function corrupt(record: JournalRecord): DrError {
  return new DrError('E_CORRUPT', `journal record ${record.version} of "${record.stream}" is not a valid ${record.type} event`, {
    stream: record.stream,
    version: record.version,
    type: record.type,
  })
}
