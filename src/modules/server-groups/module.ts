import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { EvMirrorFacade } from '../ev-mirror/index.js'
import type { VolumeFacade } from '../volume/index.js'
import { GroupContext, type ServerGroupSite } from './context.js'
import type { ServerGroupEvents } from './events.js'
import { ServerGroupFacade } from './facade.js'
import { ServerGroupsJournalEventCodec, ServerGroupsStateCodec, emptyServerGroupsState, reduceServerGroups } from './state.js'

/** The journal stream of server groups. */
const STREAM = 'server-groups/groups'

/**
 * What server groups need from the system: the state store and workflow engine, the expandable-volume
 * replication facade (`dr.evMirrors`) and the volume facade (`dr.volumes`), the network and host ports of each
 * site, where to publish events, the clock (the DR snapshot series runs on it) and the fence token source.
 *
 * @public
 */
export interface ServerGroupsModuleDeps {
  readonly stateStore: StateStore
  readonly workflows: WorkflowEngine
  readonly evMirrors: EvMirrorFacade
  readonly volumes: VolumeFacade
  readonly sites: (name: string) => ServerGroupSite
  readonly events: EventSink<ServerGroupEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
}

/**
 * The server-groups module as the system holds it: the facade (`dr.serverGroups`) and `close()`, which stops
 * the DR snapshot series loops.
 *
 * @public
 */
export interface ServerGroupsModule {
  readonly facade: ServerGroupFacade
  close(): Promise<void>
}

/**
 * Opens server groups: replays the journal, builds the facade (registering its workflows) and starts the DR
 * snapshot series of the scheduled groups.
 *
 * @public
 */
export async function openServerGroupsModule(deps: ServerGroupsModuleDeps): Promise<ServerGroupsModule> {
  const store = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: STREAM,
    initial: emptyServerGroupsState,
    reducer: reduceServerGroups,
    eventCodec: ServerGroupsJournalEventCodec,
    stateCodec: ServerGroupsStateCodec,
    snapshotEvery: 200,
  })
  const cx = new GroupContext({ store, evMirrors: deps.evMirrors, volumes: deps.volumes, sites: deps.sites, events: deps.events, clock: deps.clock, token: deps.token })
  const facade = new ServerGroupFacade(cx, deps.workflows)
  facade.startSchedules()
  return {
    facade,
    close: async () => facade.stopSchedules(),
  }
}
