import { JournaledStore } from '../../kernel/store.js'
import { SerialState, type FreezeContext, type FreezeModuleDeps } from './context.js'
import { FreezeCoordinator } from './coordinator.js'
import { FreezeFacade } from './facade.js'
import { FreezeJournalEventCodec, FreezeStateCodec, emptyFreezeState, reduceFreezeState } from './state.js'
import { UpdateLocks } from './update-lock.js'
import { WriteJournal } from './write-journal.js'

/** The journal stream of the protected volumes. */
const STREAM = 'freeze/protections'

/**
 * The freeze module as the system holds it: the facade (`dr.freeze`) and `close()`, which stops the health probes
 * and waits for running restores.
 *
 * @public
 */
export interface FreezeModule {
  readonly facade: FreezeFacade
  close(): Promise<void>
}

/**
 * Opens the freeze module: replays the protections journal, registers the restore workflow on `deps.workflows`,
 * arms the health probes and builds the facade. Restores a crash interrupted are resumed by `facade.recover()`
 * (or by the system's `recover()`, which resumes every running workflow).
 *
 * @public
 */
export async function openFreezeModule(deps: FreezeModuleDeps): Promise<FreezeModule> {
  const store = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: STREAM,
    initial: emptyFreezeState,
    reducer: reduceFreezeState,
    eventCodec: FreezeJournalEventCodec,
    stateCodec: FreezeStateCodec,
    snapshotEvery: 500,
  })
  const random = deps.random ?? Math.random
  const ctx: FreezeContext = {
    ...deps,
    random,
    state: new SerialState(store),
    locks: new UpdateLocks({ stateStore: deps.stateStore, clock: deps.clock, random }),
    journal: new WriteJournal(deps.stateStore),
    hooks: [],
  }
  const coordinator = new FreezeCoordinator(ctx)
  for (const key of Object.keys(store.state.protections)) coordinator.armProbe(key)
  return { facade: new FreezeFacade(coordinator), close: () => coordinator.close() }
}
