import type { Clock } from '../../kernel/clock.js'
import type { Json } from '../../kernel/codecs.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { HostPort, MountInfo } from '../../ports/host.js'
import type { StoragePort } from '../../ports/storage.js'
import type { FreezeEvents } from './events.js'
import type { ResolveReplica } from './restore-sources.js'
import type { FreezeJournalEvent, FreezeState, ProtectionRecord } from './state.js'
import type { UpdateLocks } from './update-lock.js'
import type { WriteJournal } from './write-journal.js'
import { DrError } from '../../kernel/errors.js'
import type { Decision } from '../../kernel/store.js'

/**
 * What the freeze module needs from the system: the state store and workflow engine, each site's storage and host
 * ports, where to publish events, the clock, the fence token, and optionally a random source (for the lock
 * backoff; default `Math.random`) and the replica resolver (for `replica` sources; the mirror module provides one).
 *
 * @public
 */
export interface FreezeModuleDeps {
  readonly stateStore: StateStore
  readonly workflows: WorkflowEngine
  readonly storage: (site: string) => StoragePort
  readonly host: (site: string) => HostPort
  readonly events: EventSink<FreezeEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly random?: () => number
  readonly resolveReplica?: ResolveReplica
}

/**
 * Configuration an embedder keeps with a mount beyond what the host port records (export rules, igroups, a
 * Windows mount folder…): `capture` reads it before the volume is dismounted, the result is journaled with the
 * restore, and `apply` puts it back after the remount.
 *
 * @public
 */
export interface MountPropertyHook {
  readonly name: string
  capture(mount: { readonly site: string; readonly volume: string; readonly mount: MountInfo }): Promise<Json>
  apply?(mount: { readonly site: string; readonly volume: string; readonly mount: MountInfo; readonly saved: Json }): Promise<void>
}

/**
 * Commits decisions to the module's journaled state one at a time (the workflows, the probes and the facade all
 * write to it concurrently), and catches up with other coordinators' commits on request.
 *
 * @public
 */
export class SerialState {
  readonly #store: JournaledStore<FreezeState, FreezeJournalEvent>
  #queue: Promise<unknown> = Promise.resolve()

  constructor(store: JournaledStore<FreezeState, FreezeJournalEvent>) {
    this.#store = store
  }

  /** The current state. */
  get state(): FreezeState {
    return this.#store.state
  }

  /** Runs `decide` against the latest state and commits its events, after every earlier call. */
  execute(decide: Decision<FreezeState, FreezeJournalEvent>): Promise<readonly FreezeJournalEvent[]> {
    const result = this.#queue.then(() => this.#store.execute(decide))
    this.#queue = result.catch(() => undefined)
    return result
  }

  /** Catches up with what other coordinators on the same state store committed, after every earlier call. */
  refresh(): Promise<void> {
    const result = this.#queue.then(() => this.#store.refresh())
    this.#queue = result.catch(() => undefined)
    return result
  }

  /** The protection of `key`; `E_NOT_FOUND` when the volume is not protected. */
  protection(key: string): ProtectionRecord {
    const record = this.#store.state.protections[key]
    if (record === undefined) throw new DrError('E_NOT_FOUND', `volume ${key} is not protected`, { key })
    return record
  }
}

/**
 * Everything the parts of the freeze module share.
 *
 * @public
 */
export interface FreezeContext extends FreezeModuleDeps {
  readonly random: () => number
  readonly state: SerialState
  readonly locks: UpdateLocks
  readonly journal: WriteJournal
  readonly hooks: MountPropertyHook[]
}
