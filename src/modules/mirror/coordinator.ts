import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Decision, JournaledStore } from '../../kernel/store.js'
import type { NetworkPort } from '../../ports/network.js'
import type { StoragePort } from '../../ports/storage.js'
import { abortError } from './agent-context.js'
import { MirrorAgent } from './agent.js'
import type { DestinationSession } from './destination.js'
import type { MirrorEvents } from './events.js'
import { BufferPool } from '../../kernel/buffer-pool.js'
import type { AttachBase } from './session-record.js'
import type { SourceSession } from './source.js'
import { otherSide, sideOf, type MirrorJournalEvent, type MirrorState, type Relationship } from './state.js'

const MAX_CONVERGE_ROUNDS = 20

/**
 * How many bytes of send buffers a site's mirror agent keeps between delta sets: an incremental of up to about
 * this size is read and sent without touching new memory.
 */
const IDLE_SEND_BUFFER_BYTES = 16 * 1024 * 1024

/**
 * What a site offers the mirror module: its storage and network ports.
 *
 * @public
 */
export interface MirrorSite {
  readonly storage: StoragePort
  readonly network: NetworkPort
}

/**
 * What the coordinator needs from the system: the relationship journal, the site resolver, events, clock and
 * fence tokens.
 *
 * @public
 */
export interface CoordinatorDeps {
  readonly store: JournaledStore<MirrorState, MirrorJournalEvent>
  readonly sites: (name: string) => MirrorSite
  readonly events: EventSink<MirrorEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
}

/**
 * The coordinator's toolbox shared by the facade and the workflows: the relationship records, one mirror agent
 * per site (started on first use), reachability probes and the attach sequence of a replication direction.
 *
 * @public
 */
export class Coordinator {
  readonly deps: CoordinatorDeps
  readonly #agents = new Map<string, Promise<MirrorAgent>>()
  #closed = false

  constructor(deps: CoordinatorDeps) {
    this.deps = deps
  }

  /** The relationship `id`; `E_NOT_FOUND` when there is none. */
  rel(id: string): Relationship {
    const rel = this.deps.store.state.relationships[id]
    if (rel === undefined) throw new DrError('E_NOT_FOUND', `mirror "${id}" does not exist`, { id })
    return rel
  }

  /** Runs a pure decision against the journal and commits its events. */
  async commit(decide: Decision<MirrorState, MirrorJournalEvent>): Promise<readonly MirrorJournalEvent[]> {
    return this.deps.store.execute(decide)
  }

  /** The ports of `site`; `E_NOT_FOUND` for a site that is not configured. */
  site(name: string): MirrorSite {
    try {
      return this.deps.sites(name)
    } catch (error) {
      if (error instanceof DrError) throw error
      throw new DrError('E_NOT_FOUND', `site "${name}" is not configured`, { site: name }, { cause: error })
    }
  }

  /** The storage of `site`. */
  storage(site: string): StoragePort {
    return this.site(site).storage
  }

  /** The mirror agent of `site`, started (listening) on first use. */
  agent(site: string): Promise<MirrorAgent> {
    if (this.#closed) return Promise.reject(new DrError('E_CLOSED', 'the mirror module is closed'))
    let agent = this.#agents.get(site)
    if (agent === undefined) {
      const ports = this.site(site)
      agent = MirrorAgent.start({
        site,
        storage: ports.storage,
        network: ports.network,
        clock: this.deps.clock,
        token: this.deps.token,
        events: this.deps.events,
        sendBuffers: new BufferPool(IDLE_SEND_BUFFER_BYTES),
      })
      this.#agents.set(site, agent)
      agent.catch(() => this.#agents.delete(site))
    }
    return agent
  }

  /** The source side of a relationship served at its primary, if running there. */
  async source(rel: Relationship): Promise<SourceSession> {
    const ref = sideOf(rel, rel.primary)
    const session = (await this.agent(ref.site)).source(rel.id)
    if (session === undefined) throw new DrError('E_PRECONDITION', `mirror "${rel.id}" is not replicating from ${ref.site}`, { id: rel.id })
    return session
  }

  /** The destination side of a relationship, recovering it from its volume record if needed. */
  async destination(rel: Relationship): Promise<DestinationSession> {
    const ref = sideOf(rel, otherSide(rel.primary))
    const agent = await this.agent(ref.site)
    if (agent.destination(rel.id) === undefined) await agent.recover(rel.id, ref.volume)
    const session = agent.destination(rel.id)
    if (session === undefined) throw new DrError('E_PRECONDITION', `mirror "${rel.id}" has no destination at ${ref.site}`, { id: rel.id })
    return session
  }

  /** Whether `to` answers a probe from `from`'s network. */
  async reachable(from: string, to: string): Promise<boolean> {
    const network = this.site(from).network
    const result = await callAdapter(network.kind, 'probe', () => network.probe(to, 5_000)).catch(() => ({ reachable: false }))
    return result.reachable
  }

  /**
   * Attaches the replication direction of `rel` (its primary → the other side) at `epoch`: the destination first,
   * so that the source finds it listening, then the source. `bases` are used only by a fresh attachment.
   */
  async attach(rel: Relationship, epoch: number, bases: { source: AttachBase; destination: AttachBase }): Promise<void> {
    const src = sideOf(rel, rel.primary)
    const dst = sideOf(rel, otherSide(rel.primary))
    const common = { session: rel.id, epoch, cut: rel.cut, playback: rel.playback, transfer: rel.transfer }
    await (await this.agent(dst.site)).attachDestination({ ...common, volume: dst.volume, peer: src, base: bases.destination })
    await (await this.agent(src.site)).attachSource({ ...common, volume: src.volume, peer: dst, base: bases.source })
  }

  /**
   * Resumes, on both sites, whatever the volumes' records say each side was doing (after a restart), with the
   * relationship's transfer policy (a change the journal recorded reaches a side a crash kept it from).
   */
  async recover(rel: Relationship): Promise<void> {
    const destinationFirst = rel.primary === 'a' ? [rel.b, rel.a] : [rel.a, rel.b]
    for (const ref of destinationFirst) {
      try {
        const agent = await this.agent(ref.site)
        await agent.setTransfer(rel.id, ref.volume, rel.transfer)
        await agent.recover(rel.id, ref.volume)
      } catch (error) {
        if (!isDrError(error)) throw error
      }
    }
  }

  /** Sets a volume's writability. */
  async setWritable(ref: { readonly site: string; readonly volume: string }, writable: boolean): Promise<void> {
    const storage = this.storage(ref.site)
    await callAdapter(storage.kind, 'setWritable', () => storage.setWritable(ref.volume, writable, this.deps.token()))
  }

  /** Resolves with `work`, or rejects with `E_TIMEOUT` after `timeoutMs` on the clock, or `E_ABORTED` on `signal`. */
  async within<R>(work: (signal: AbortSignal) => Promise<R>, timeoutMs: number, signal: AbortSignal, what: string): Promise<R> {
    const controller = new AbortController()
    const onAbort = (): void => controller.abort(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    let cancel: () => void = () => undefined
    const timeout = new Promise<never>((_, reject) => {
      cancel = this.deps.clock.setTimer(timeoutMs, () => {
        const error = new DrError('E_TIMEOUT', `${what} did not finish within ${timeoutMs} ms`, { timeoutMs })
        controller.abort(error)
        reject(error)
      })
    })
    try {
      if (signal.aborted) throw abortError(signal)
      return await Promise.race([work(controller.signal), timeout])
    } finally {
      cancel()
      signal.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Cuts and waits until the destination has played back the cut, until what remains to send is within one chunk
   * (the "within one delta chunk" convergence of failover with sync and of failback).
   */
  async converge(rel: Relationship, timeoutMs: number, signal: AbortSignal): Promise<number> {
    const source = await this.source(rel)
    const destination = await this.destination(rel)
    for (let round = 0; round < MAX_CONVERGE_ROUNDS; round++) {
      const n = await source.cutNow('manual')
      await this.within((s) => destination.drainTo(n, s), timeoutMs, signal, `convergence of mirror "${rel.id}"`)
      if ((await source.cuts.pendingBytes()) <= rel.transfer.chunkBytes) return n
    }
    throw new DrError('E_TIMEOUT', `mirror "${rel.id}" did not converge within ${MAX_CONVERGE_ROUNDS} delta sets`, { id: rel.id })
  }

  /** Stops every agent (the module is closing). */
  async close(): Promise<void> {
    this.#closed = true
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    for (const agent of agents) await (await agent.catch(() => undefined))?.close()
  }
}
