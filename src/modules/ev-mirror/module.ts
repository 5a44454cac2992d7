import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { VolumeFacade } from '../volume/index.js'
import { EvContext, type EvMirrorSite } from './context.js'
import type { EvMirrorEvents } from './events.js'
import { EvMirrorFacade } from './facade.js'
import { EvMirrorJournalEventCodec, EvMirrorStateCodec, emptyEvMirrorState, reduceEvMirrorState } from './state.js'

/** The journal stream of expandable-volume relationships. */
const STREAM = 'ev-mirror/relationships'

/** Member transfers send chunks of at most 1 MiB of data unless told otherwise. */
const DEFAULT_CHUNK_BYTES = 1024 * 1024

/**
 * What expandable-volume replication needs from the system: the state store and workflow engine, the volume
 * facade (`dr.volumes`), the storage and network ports of each site, where to publish events, the clock, the
 * fence token source, and optionally the chunk size of member transfers.
 *
 * @public
 */
export interface EvMirrorModuleDeps {
  readonly stateStore: StateStore
  readonly workflows: WorkflowEngine
  readonly volumes: VolumeFacade
  readonly sites: (name: string) => EvMirrorSite
  readonly events: EventSink<EvMirrorEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly chunkBytes?: number
}

/**
 * The expandable-volume replication module as the system holds it: the facade (`dr.evMirrors`) and `close()`,
 * which stops the scheduled transfers and the member receivers it started.
 *
 * @public
 */
export interface EvMirrorModule {
  readonly facade: EvMirrorFacade
  close(): Promise<void>
}

/**
 * Opens expandable-volume replication: replays the relationship journal, builds the facade (registering its
 * workflows: open it before the system resumes unfinished workflows; `facade.recover()` resumes its own) and
 * starts the scheduled transfers of relationships whose configuration has a schedule.
 *
 * @public
 */
export async function openEvMirrorModule(deps: EvMirrorModuleDeps): Promise<EvMirrorModule> {
  const store = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: STREAM,
    initial: emptyEvMirrorState,
    reducer: reduceEvMirrorState,
    eventCodec: EvMirrorJournalEventCodec,
    stateCodec: EvMirrorStateCodec,
    snapshotEvery: 200,
  })
  const cx = new EvContext({
    store,
    volumes: deps.volumes,
    sites: deps.sites,
    events: deps.events,
    clock: deps.clock,
    token: deps.token,
    chunkBytes: deps.chunkBytes ?? DEFAULT_CHUNK_BYTES,
  })
  const facade = new EvMirrorFacade(cx, deps.workflows)
  facade.startSchedules()
  return {
    facade,
    close: async () => {
      facade.stopSchedules()
      await cx.close()
    },
  }
}
