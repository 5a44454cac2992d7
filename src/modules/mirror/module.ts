import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import { Coordinator, type MirrorSite } from './coordinator.js'
import type { MirrorEvents } from './events.js'
import { MirrorFacade } from './facade.js'
import { mirrorRetentionGuard } from './retention-guard.js'
import { MirrorJournalEventCodec, MirrorStateCodec, emptyMirrorState, reduceMirrorState } from './state.js'

/** The journal stream of the mirror relationships. */
const STREAM = 'mirror/relationships'

/**
 * What the mirror module needs from the system: the state store and workflow engine, the ports of each site,
 * where to publish events, the clock and the fence token source.
 *
 * @public
 */
export interface MirrorModuleDeps {
  readonly stateStore: StateStore
  readonly workflows: WorkflowEngine
  readonly sites: (name: string) => MirrorSite
  readonly events: EventSink<MirrorEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
}

/**
 * The mirror module as the system holds it: the facade (`dr.mirrors`), a retention guard for the snapshot
 * scheduler (it protects every snapshot a relationship still needs), and `close()`, which stops the site agents.
 *
 * @public
 */
export interface MirrorModule {
  readonly facade: MirrorFacade
  readonly retentionGuard: (site: string, volume: string, snapshot: string) => boolean
  close(): Promise<void>
}

/**
 * Opens the mirror module: replays the relationship journal, builds the facade, and resumes on each site what
 * the volumes' session records say the agents were doing (replication restarts where it stopped; interrupted
 * operations are resumed by `facade.recover()`).
 *
 * @public
 */
export async function openMirrorModule(deps: MirrorModuleDeps): Promise<MirrorModule> {
  const store = await JournaledStore.open({
    stateStore: deps.stateStore,
    stream: STREAM,
    initial: emptyMirrorState,
    reducer: reduceMirrorState,
    eventCodec: MirrorJournalEventCodec,
    stateCodec: MirrorStateCodec,
    snapshotEvery: 200,
  })
  const co = new Coordinator({ store, sites: deps.sites, events: deps.events, clock: deps.clock, token: deps.token })
  const facade = new MirrorFacade(co, deps.workflows)
  const relationships = Object.values(store.state.relationships)
  for (const site of new Set(relationships.flatMap((rel) => [rel.a.site, rel.b.site]))) await co.agent(site).catch(() => undefined)
  for (const rel of relationships) await co.recover(rel)
  return {
    facade,
    retentionGuard: mirrorRetentionGuard(() => store.state),
    close: () => co.close(),
  }
}
