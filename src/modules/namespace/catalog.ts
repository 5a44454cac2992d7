import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore, type CommitListener, type Decision } from '../../kernel/store.js'
import { CatalogIndex } from './catalog-index.js'
import { NamespaceJournalEventCodec, NamespaceStateCodec, emptyNamespaceState, reduceNamespaceState, type NamespaceJournalEvent, type NamespaceState } from './state.js'

/**
 * The journal stream of the namespace module's state.
 *
 * @public
 */
export const NAMESPACE_STREAM = 'namespace/catalog'

/**
 * drkit's copy of the namespaces, policies and protections, journaled in the state store, with its indexes.
 * Decisions are group-committed, gathered per turn of the event loop: the many workflows and probes of one
 * coordinator never race each other for the stream version, and a storm of link switches costs a few appends,
 * each folded in one copy-on-write pass.
 *
 * @public
 */
export class NamespaceCatalog {
  readonly #store: JournaledStore<NamespaceState, NamespaceJournalEvent>
  /** The link paths of each namespace and the protected links of each primary share. */
  readonly index: CatalogIndex

  private constructor(store: JournaledStore<NamespaceState, NamespaceJournalEvent>) {
    this.#store = store
    this.index = new CatalogIndex(store.state)
    store.onCommitted((events, state) => this.index.apply(events, state))
  }

  /** Opens the catalog, replaying its journal (from the newest saved state). */
  static async open(stateStore: StateStore): Promise<NamespaceCatalog> {
    const store = await JournaledStore.open({
      stateStore,
      stream: NAMESPACE_STREAM,
      initial: emptyNamespaceState,
      reducer: reduceNamespaceState,
      eventCodec: NamespaceJournalEventCodec,
      stateCodec: NamespaceStateCodec,
      snapshotEvery: 10_000,
      sharedDraft: true,
      gather: true,
    })
    return new NamespaceCatalog(store)
  }

  /** The current state (read-only). */
  get state(): NamespaceState {
    return this.#store.state
  }

  /** The journal version the state reflects; it changes with every committed event. */
  get version(): number {
    return this.#store.version
  }

  /** Calls `listener` with the events of every append and the state after it; returns a function that stops it. */
  onCommitted(listener: CommitListener<NamespaceState, NamespaceJournalEvent>): () => void {
    return this.#store.onCommitted(listener)
  }

  /** Runs a pure decision against the latest state and commits its events, after every earlier decision. */
  execute(decide: Decision<NamespaceState, NamespaceJournalEvent>): Promise<readonly NamespaceJournalEvent[]> {
    return this.#store.execute(decide)
  }
}
