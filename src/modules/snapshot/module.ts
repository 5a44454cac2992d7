import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { StoragePort } from '../../ports/storage.js'
import type { SnapshotEvents } from './events.js'
import { SnapshotFacade } from './facade.js'
import { SnapshotScheduler } from './scheduler.js'
import { SnapshotJournalEventCodec, SnapshotStateCodec, emptySnapshotState, reduceSnapshotState } from './state.js'

/** The journal stream of the snapshot catalog. */
const CATALOG_STREAM = 'snapshot/catalog'

/**
 * The snapshot module as the system holds it: the facade users call and the scheduler the system starts and stops.
 *
 * @public
 */
export interface SnapshotModule {
  readonly facade: SnapshotFacade
  readonly scheduler: SnapshotScheduler
}

/**
 * Opens the snapshot catalog (replaying its journal) and builds the facade and scheduler.
 *
 * @public
 */
export async function openSnapshotModule(deps: {
  stateStore: StateStore
  workflows: WorkflowEngine
  storage: (site: string) => StoragePort
  events: EventSink<SnapshotEvents>
  clock: Clock
  token: () => FenceToken
}): Promise<SnapshotModule> {
  const catalog = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: CATALOG_STREAM,
    initial: emptySnapshotState,
    reducer: reduceSnapshotState,
    eventCodec: SnapshotJournalEventCodec,
    stateCodec: SnapshotStateCodec,
    snapshotEvery: 500,
  })
  const facade = new SnapshotFacade({ catalog, workflows: deps.workflows, storage: deps.storage, events: deps.events, clock: deps.clock, token: deps.token })
  const scheduler = new SnapshotScheduler({ facade, catalog, storage: deps.storage, events: deps.events, clock: deps.clock })
  return { facade, scheduler }
}
