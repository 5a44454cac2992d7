import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { MirrorFacade } from '../mirror/index.js'
import type { VmSite } from './context.js'
import type { VmEvents } from './events.js'
import { VmFacade } from './facade.js'
import { VmJournalEventCodec, VmStateCodec, emptyVmState, reduceVmState } from './state.js'

/** The journal stream of the VM catalog. */
const STREAM = 'vm/catalog'

/**
 * What the VM module needs from the system: the state store and workflow engine, the storage and host ports of
 * each site, the mirror facade (it replicates the backup volumes), where to publish events, the clock and the
 * fence token source.
 *
 * @public
 */
export interface VmModuleDeps {
  readonly stateStore: StateStore
  readonly workflows: WorkflowEngine
  readonly sites: (name: string) => VmSite
  readonly mirrors: MirrorFacade
  readonly events: EventSink<VmEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
}

/**
 * The VM module as the system holds it: the facade (`dr.vms`) and `close()`, which cancels the plan schedules.
 *
 * @public
 */
export interface VmModule {
  readonly facade: VmFacade
  close(): Promise<void>
}

/**
 * Opens the VM module: replays the catalog journal, registers the module's workflows, builds the facade and arms
 * the backup and replication schedules of every plan. Interrupted workflows are resumed by `facade.recover()`.
 *
 * @public
 */
export async function openVmModule(deps: VmModuleDeps): Promise<VmModule> {
  const store = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: STREAM,
    initial: emptyVmState,
    reducer: reduceVmState,
    eventCodec: VmJournalEventCodec,
    stateCodec: VmStateCodec,
    snapshotEvery: 500,
  })
  const facade = new VmFacade({ store, sites: deps.sites, mirrors: deps.mirrors, events: deps.events, clock: deps.clock, token: deps.token, workflows: deps.workflows })
  return {
    facade,
    close: async () => facade.close(),
  }
}
