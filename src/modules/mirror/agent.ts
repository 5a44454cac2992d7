import { DrError, callAdapter, isDrError, toDrError } from '../../kernel/errors.js'
import type { Channel, PeerRejection } from '../../ports/network.js'
import { deltaSetSnapshots, store, type AgentContext } from './agent-context.js'
import { DestinationSession } from './destination.js'
import { refuse } from './refusal.js'
import { refuseStranger, reportPeerRejected } from './peer-rejections.js'
import { serveFetch, undoFromPeer, type UndoRequest } from './fetch.js'
import { MIRROR_SERVICE, baseHold } from './naming.js'
import { decodeFrame, type HelloFrame } from './protocol.js'
import { readVolumeSession, writeVolumeSession, type TransferPolicy, type VolumeSession } from './session-record.js'
import { sameTransfer } from './decide.js'
import { SourceSession } from './source.js'

/**
 * What the coordinator asks an agent to serve: a session's side on a volume of this site, with its role, epoch,
 * peer, the base both sides share and the policies.
 *
 * @public
 */
export type AttachRequest = Omit<VolumeSession, 'active' | 'role'> & { readonly volume: string }

interface Entry {
  readonly volume: string
  record: VolumeSession
  source?: SourceSession
  destination?: DestinationSession
}

/**
 * The mirror agent of one site: bound to the site's storage and network, it listens on `drkit.mirror`, serves
 * the sides of sessions whose volumes live here (source: cut and send; destination: receive, stage, play back),
 * refuses channels of unknown sessions or older epochs, and answers resync fetches. Each side's role and epoch
 * are persisted on the volume, so an agent that restarts resumes exactly what it was doing.
 *
 * @public
 */
export class MirrorAgent {
  readonly site: string
  readonly #ctx: AgentContext
  readonly #entries = new Map<string, Entry>()
  readonly #serving = new Map<Channel, Promise<void>>()
  #unlisten: (() => Promise<void>) | undefined
  #unsubscribe: (() => void) | undefined

  private constructor(ctx: AgentContext) {
    this.#ctx = ctx
    this.site = ctx.site
  }

  /** Starts the agent of `ctx.site`: listens on the mirror service. */
  static async start(ctx: AgentContext): Promise<MirrorAgent> {
    const agent = new MirrorAgent(ctx)
    agent.#unlisten = await callAdapter(ctx.network.kind, 'listen', () =>
      ctx.network.listen(MIRROR_SERVICE, (channel) => {
        const serving = agent.#serve(channel)
        agent.#serving.set(channel, serving)
        void serving.finally(() => agent.#serving.delete(channel))
      }),
    )
    agent.#unsubscribe = ctx.network.onPeerRejected?.((rejection) => agent.#onPeerRejected(rejection))
    return agent
  }

  /** The agent's context (site, storage, network). */
  get context(): AgentContext {
    return this.#ctx
  }

  /** The source side of `session` served here, if any. */
  source(session: string): SourceSession | undefined {
    return this.#entries.get(session)?.source
  }

  /** The destination side of `session` served here, if any. */
  destination(session: string): DestinationSession | undefined {
    return this.#entries.get(session)?.destination
  }

  /** The persisted record of `session` on this site, if loaded. */
  record(session: string): VolumeSession | undefined {
    return this.#entries.get(session)?.record
  }

  /**
   * Serves `request` as the source side. An attachment at the same epoch and role resumes (cuts and progress
   * kept); a newer epoch starts afresh from `request.base`; an older epoch is refused with `E_FENCED`.
   */
  async attachSource(request: AttachRequest): Promise<SourceSession> {
    const entry = await this.#attach(request, 'source')
    const session = entry.source ?? (await this.#openSource(request.session, entry))
    entry.source = session
    session.start()
    return session
  }

  /** Serves `request` as the destination side (same resume rules as {@link MirrorAgent.attachSource}). */
  async attachDestination(request: AttachRequest): Promise<DestinationSession> {
    const entry = await this.#attach(request, 'destination')
    const session = entry.destination ?? (await DestinationSession.open(this.#ctx, entry.volume, entry.record))
    entry.destination = session
    return session
  }

  /** Resumes what the volume's session record says this site was doing for `session` (after a restart). */
  async recover(session: string, volume: string): Promise<void> {
    const record = await readVolumeSession(this.#ctx.storage, volume).catch((error: unknown) => {
      if (isDrError(error, 'E_NOT_FOUND')) return undefined
      throw error
    })
    if (record === undefined || record.session !== session) return
    const entry: Entry = this.#entries.get(session) ?? { volume, record }
    entry.record = record
    this.#entries.set(session, entry)
    if (!record.active) return
    if (record.role === 'source' && entry.source === undefined) {
      entry.source = await this.#openSource(session, entry)
      entry.source.start()
    }
    if (record.role === 'destination' && entry.destination === undefined) {
      entry.destination = await DestinationSession.open(this.#ctx, volume, record)
    }
  }

  /**
   * Stops serving `session` here and marks it inactive (progress and snapshots stay, so it can resume). With
   * `volume`, a session this agent has not loaded is marked inactive on the volume without being started.
   */
  async detach(session: string, volume?: string): Promise<void> {
    let entry = this.#entries.get(session)
    if (entry === undefined && volume !== undefined) {
      const record = await readVolumeSession(this.#ctx.storage, volume)
      if (record === undefined || record.session !== session) return
      entry = { volume, record }
      this.#entries.set(session, entry)
    }
    if (entry === undefined) return
    await entry.source?.stop()
    await entry.destination?.stop()
    delete entry.source
    delete entry.destination
    if (entry.record.active) {
      entry.record = { ...entry.record, active: false }
      await writeVolumeSession(this.#ctx.storage, entry.volume, entry.record, this.#ctx.token())
    }
  }

  /**
   * Changes how `session` transfers on this site (its bandwidth limit): recorded on the volume, applied at once to
   * a source side served here. Does nothing when the volume has no record of the session or already has it.
   */
  async setTransfer(session: string, volume: string, transfer: TransferPolicy): Promise<void> {
    const entry = this.#entries.get(session)
    const record = entry?.record ?? (await readVolumeSession(this.#ctx.storage, volume))
    if (record === undefined || record.session !== session || sameTransfer(record.transfer, transfer)) return
    const updated = { ...record, transfer }
    await writeVolumeSession(this.#ctx.storage, entry?.volume ?? volume, updated, this.#ctx.token())
    if (entry !== undefined) entry.record = updated
    entry?.source?.setTransfer(transfer)
  }

  /**
   * Makes this side the primary of `session` at `epoch`: receiving stops, what was not played back is dropped,
   * and older epochs are refused from now on. The volume's writability is the coordinator's business.
   */
  async promote(session: string, volume: string, epoch: number): Promise<void> {
    const entry = this.#entries.get(session) ?? { volume, record: await this.#required(session, volume) }
    this.#entries.set(session, entry)
    await entry.destination?.abandon()
    await entry.source?.stop()
    delete entry.destination
    delete entry.source
    entry.record = { ...entry.record, role: 'primary', active: false, epoch: Math.max(epoch, entry.record.epoch) }
    await writeVolumeSession(this.#ctx.storage, volume, entry.record, this.#ctx.token())
  }

  /** Undoes the old source's changes from the peer's restart point (see {@link undoFromPeer}). */
  undo(options: UndoRequest): Promise<number> {
    return undoFromPeer(this.#ctx, options)
  }

  /** Forgets `session` on `volume`: stops it, releases and deletes its delta-set snapshots and its record. */
  async forget(session: string, volume: string): Promise<void> {
    await this.detach(session)
    this.#entries.delete(session)
    for (const snap of await deltaSetSnapshots(this.#ctx, volume, session).catch(() => [])) {
      if (snap.info.holds.includes(baseHold(session))) {
        await store(this.#ctx, 'releaseSnapshot', (s) => s.releaseSnapshot(volume, snap.info.name, baseHold(session), this.#ctx.token()))
      }
      await store(this.#ctx, 'deleteSnapshot', (s) => s.deleteSnapshot(volume, snap.info.name, this.#ctx.token())).catch(() => undefined)
    }
  }

  /** Stops every session and the listener (the agent's process is going away). */
  async close(): Promise<void> {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    await this.#unlisten?.()
    this.#unlisten = undefined
    for (const entry of this.#entries.values()) {
      await entry.source?.stop().catch(() => undefined)
      await entry.destination?.stop({ keepPartial: true }).catch(() => undefined)
    }
    this.#entries.clear()
    // A channel still waiting for its first frame (a peer held back by its bandwidth limit) is closed too.
    for (const channel of this.#serving.keys()) await channel.close().catch(() => undefined)
    await Promise.allSettled([...this.#serving.values()])
  }

  /**
   * The network refused a peer that failed authentication: every session served here hears of it (the refused
   * end never got as far as naming a session, and nothing it sent reached the agent).
   */
  #onPeerRejected(rejection: PeerRejection): void {
    const peer = rejection.claimedSite ?? rejection.remoteAddress ?? 'unknown'
    for (const session of this.#entries.keys()) reportPeerRejected(this.#ctx, session, peer, 'E_PRECONDITION', `the network refused ${peer}: ${rejection.reason}`)
  }

  /** Opens the source side of `entry`; once fenced, it is recorded inactive on its volume. */
  #openSource(session: string, entry: Entry): Promise<SourceSession> {
    return SourceSession.open(this.#ctx, entry.volume, entry.record, {
      onFenced: async () => {
        if (this.#entries.get(session) !== entry || !entry.record.active) return
        entry.record = { ...entry.record, active: false }
        await writeVolumeSession(this.#ctx.storage, entry.volume, entry.record, this.#ctx.token())
      },
    })
  }

  async #required(session: string, volume: string): Promise<VolumeSession> {
    const record = await readVolumeSession(this.#ctx.storage, volume)
    if (record === undefined || record.session !== session) {
      throw new DrError('E_NOT_FOUND', `volume ${this.site}/${volume} has no record of mirror session ${session}`, { session, volume })
    }
    return record
  }

  async #attach(request: AttachRequest, role: 'source' | 'destination'): Promise<Entry> {
    const { volume, ...rest } = request
    const persisted = await readVolumeSession(this.#ctx.storage, volume)
    if (persisted !== undefined && persisted.session !== request.session) {
      throw new DrError('E_CONFLICT', `volume ${this.site}/${volume} belongs to mirror session ${persisted.session}`, { volume, session: persisted.session })
    }
    if (persisted !== undefined && persisted.epoch > request.epoch) {
      throw new DrError('E_FENCED', `session ${request.session} is at epoch ${persisted.epoch} on ${this.site}, not ${request.epoch}`, { session: request.session })
    }
    const current = this.#entries.get(request.session)
    const resume = persisted !== undefined && persisted.role === role && persisted.epoch === request.epoch
    if (!resume) {
      await current?.source?.stop()
      await current?.destination?.stop()
    }
    const record: VolumeSession = resume ? { ...persisted, active: true } : { ...rest, role, active: true }
    if (!resume) await prune(this.#ctx, volume, request.session, request.base?.n ?? null)
    await writeVolumeSession(this.#ctx.storage, volume, record, this.#ctx.token())
    const entry: Entry = resume && current !== undefined ? current : { volume, record }
    entry.record = record
    this.#entries.set(request.session, entry)
    return entry
  }

  async #serve(channel: Channel): Promise<void> {
    const frames = channel.frames()[Symbol.asyncIterator]()
    try {
      const first = await frames.next()
      if (first.done === true) return
      const decoded = decodeFrame(first.value)
      if (decoded.kind !== 'control' || (decoded.frame.t !== 'hello' && decoded.frame.t !== 'fetch')) {
        return refuse(channel, 'E_INVALID_INPUT', 'a mirror channel starts with hello or fetch', null)
      }
      if (decoded.frame.t === 'fetch') {
        return serveFetch(this.#ctx, channel, frames, decoded.frame, (session) => {
          const entry = this.#entries.get(session)
          return entry === undefined ? undefined : { volume: entry.volume, epoch: entry.record.epoch, chunkBytes: entry.record.transfer.chunkBytes, peer: entry.record.peer.site }
        })
      }
      return this.#serveHello(channel, frames, decoded.frame)
    } catch (error) {
      const failure = toDrError(error)
      if (failure.code !== 'E_UNAVAILABLE' && failure.code !== 'E_CLOSED') await refuse(channel, 'E_CORRUPT', failure.message, null)
    }
  }

  async #serveHello(channel: Channel, frames: AsyncIterator<Uint8Array>, hello: HelloFrame): Promise<void> {
    const entry = this.#entries.get(hello.session)
    if (entry === undefined) return refuse(channel, 'E_NOT_FOUND', `mirror session ${hello.session} is unknown at ${this.site}`, null)
    const epoch = entry.record.epoch
    if (await refuseStranger(this.#ctx, channel, hello.session, entry.record.peer.site, epoch)) return
    if (hello.epoch < epoch) {
      this.#ctx.events.emit('mirror.staleEpochRefused', 'warning', { id: hello.session, site: this.site, from: channel.remoteSite, epoch: hello.epoch, current: epoch })
      return refuse(channel, 'E_FENCED', `epoch ${hello.epoch} is older than ${epoch}`, epoch)
    }
    const destination = entry.destination
    if (destination === undefined || hello.epoch > epoch) {
      return refuse(channel, 'E_PRECONDITION', `${this.site} is not the destination of ${hello.session} at epoch ${hello.epoch}`, epoch)
    }
    await destination.accept(channel, frames, hello)
  }
}

/** Deletes every delta-set snapshot of `session` on `volume` except number `keep` (a fresh attachment). */
async function prune(ctx: AgentContext, volume: string, session: string, keep: number | null): Promise<void> {
  for (const snap of await deltaSetSnapshots(ctx, volume, session)) {
    if (snap.n === keep) continue
    if (snap.info.holds.includes(baseHold(session))) {
      await store(ctx, 'releaseSnapshot', (s) => s.releaseSnapshot(volume, snap.info.name, baseHold(session), ctx.token()))
    }
    if (snap.info.holds.some((h) => h !== baseHold(session))) continue
    await store(ctx, 'deleteSnapshot', (s) => s.deleteSnapshot(volume, snap.info.name, ctx.token()))
  }
}
