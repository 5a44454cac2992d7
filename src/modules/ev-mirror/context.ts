import { getOrThrow } from '../../kernel/either.js'
import type { Clock } from '../../kernel/clock.js'
import { callAdapter } from '../../kernel/errors.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Decision, JournaledStore } from '../../kernel/store.js'
import type { NetworkPort } from '../../ports/network.js'
import type { StoragePort } from '../../ports/storage.js'
import type { VolumeFacade, VolumeView } from '../volume/index.js'
import { findRelationship } from './decide.js'
import type { EvMirrorEvents } from './events.js'
import { MemberReceiver } from './receiver.js'
import { directionOf, type EvMirrorJournalEvent, type EvMirrorState, type EvRelationship, type EvSide } from './state.js'
import { EV_MIRROR_SERVICE } from './wire.js'

/**
 * What a site offers expandable-volume replication: its storage and network ports.
 *
 * @public
 */
export interface EvMirrorSite {
  readonly storage: StoragePort
  readonly network: NetworkPort
}

/**
 * The toolbox the facade and the workflows share: the relationship journal, the volume facade, the sites, events,
 * clock, fence tokens, the chunk size of member transfers, and one member receiver per destination site.
 *
 * @public
 */
export class EvContext {
  readonly store: JournaledStore<EvMirrorState, EvMirrorJournalEvent>
  readonly volumes: VolumeFacade
  readonly sites: (name: string) => EvMirrorSite
  readonly events: EventSink<EvMirrorEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly chunkBytes: number
  readonly #listeners = new Map<string, Promise<() => Promise<void>>>()
  readonly #receivers = new Map<string, MemberReceiver>()

  constructor(deps: {
    store: JournaledStore<EvMirrorState, EvMirrorJournalEvent>
    volumes: VolumeFacade
    sites: (name: string) => EvMirrorSite
    events: EventSink<EvMirrorEvents>
    clock: Clock
    token: () => FenceToken
    chunkBytes: number
  }) {
    this.store = deps.store
    this.volumes = deps.volumes
    this.sites = deps.sites
    this.events = deps.events
    this.clock = deps.clock
    this.token = deps.token
    this.chunkBytes = deps.chunkBytes
  }

  /** The relationship `id`; `E_NOT_FOUND` when there is none. */
  rel(id: string): EvRelationship {
    return getOrThrow(findRelationship(this.store.state, id))
  }

  /** The source and destination of `id` in its current direction. */
  sides(id: string): { source: EvSide; destination: EvSide } {
    return directionOf(this.rel(id))
  }

  /** Runs a pure decision and journals its events. */
  commit(decide: Decision<EvMirrorState, EvMirrorJournalEvent>): Promise<readonly EvMirrorJournalEvent[]> {
    return this.store.execute(decide)
  }

  /** The expandable volume of a side. */
  record(side: { site: string; volume: string }): Promise<VolumeView> {
    return this.volumes.get({ site: side.site, volume: side.volume })
  }

  /** The member receiver of `site` (made on first use; it receives once {@link EvContext.receiver} listens). */
  receiverOf(site: string): MemberReceiver {
    let receiver = this.#receivers.get(site)
    if (receiver === undefined) {
      receiver = new MemberReceiver(this.sites(site).storage, this.token)
      this.#receivers.set(site, receiver)
    }
    return receiver
  }

  /** Starts (once) the member receiver of `site`. */
  async receiver(site: string): Promise<void> {
    let listening = this.#listeners.get(site)
    if (listening === undefined) {
      const { network } = this.sites(site)
      const receiver = this.receiverOf(site)
      listening = callAdapter(network.kind, 'listen', () => network.listen(EV_MIRROR_SERVICE, (channel) => void receiver.serve(channel)))
      this.#listeners.set(site, listening)
      listening.catch(() => this.#listeners.delete(site))
    }
    await listening
  }

  /** Stops every receiver this context started. */
  async close(): Promise<void> {
    const stops = [...this.#listeners.values()]
    this.#listeners.clear()
    for (const stop of stops) await (await stop.catch(() => async () => undefined))().catch(() => undefined)
  }
}
