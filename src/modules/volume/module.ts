import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { StoragePort } from '../../ports/storage.js'
import type { VolumeEvents } from './events.js'
import { VolumeFacade } from './facade.js'
import { VolumeCatalogStateCodec, VolumeJournalEventCodec, emptyVolumeCatalog, reduceVolumeCatalog } from './state.js'

/** The journal stream of the volume catalog. */
const CATALOG_STREAM = 'volume/catalog'

/**
 * The volume module as the system holds it: the facade users call.
 *
 * @public
 */
export interface VolumeModule {
  readonly facade: VolumeFacade
}

/**
 * Opens the volume catalog (replaying its journal) and builds the facade, registering the module's durable
 * workflows on `workflows` — open it before the system resumes unfinished workflows.
 *
 * @public
 */
export async function openVolumeModule(deps: {
  stateStore: StateStore
  workflows: WorkflowEngine
  storage: (site: string) => StoragePort
  events: EventSink<VolumeEvents>
  clock: Clock
  token: () => FenceToken
  unfenceRetry?: RetryPolicy
}): Promise<VolumeModule> {
  const catalog = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: CATALOG_STREAM,
    initial: emptyVolumeCatalog,
    reducer: reduceVolumeCatalog,
    eventCodec: VolumeJournalEventCodec,
    stateCodec: VolumeCatalogStateCodec,
    snapshotEvery: 500,
  })
  const facade = new VolumeFacade({
    catalog,
    workflows: deps.workflows,
    storage: deps.storage,
    events: deps.events,
    clock: deps.clock,
    token: deps.token,
    ...(deps.unfenceRetry === undefined ? {} : { unfenceRetry: deps.unfenceRetry }),
  })
  return { facade }
}
