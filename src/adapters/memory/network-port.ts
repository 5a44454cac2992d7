import { DrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { Name } from '../../kernel/codecs.js'
import type { Clock } from '../../kernel/clock.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Channel, IdentityRegistry, NamespaceServer, NetworkPort, ProbeResult } from '../../ports/network.js'
import type { ChannelPair, MemoryChannel } from './network-channel.js'
import { NonEmptyText } from './network-codecs.js'

/** What a port needs from the fabric it belongs to. */
export interface FabricLink {
  readonly clock: Clock
  readonly latencyMs: number
  readonly namespaceServer: NamespaceServer
  readonly identity: IdentityRegistry
  /** True unless a partition separates the two sites (a site always reaches itself). */
  reachable(from: string, to: string): boolean
  /** The open port of `site`, if the site has one. */
  livePort(site: string): MemoryNetworkPort | undefined
  /** Creates and tracks a channel; `onClose` is called with each end as it closes. */
  openPair(clientSite: string, serverSite: string, onClose: (end: MemoryChannel) => void): ChannelPair
}

interface Listener {
  readonly onChannel: (channel: Channel) => void
}

/**
 * The network port of one site of a memory network fabric: listens, connects and probes through the fabric,
 * which decides what is reachable, and exposes the fabric's shared namespace server and identity registry.
 */
export class MemoryNetworkPort implements NetworkPort {
  readonly kind = 'memory'
  readonly site: string
  readonly namespaceServer: NamespaceServer
  readonly identity: IdentityRegistry
  readonly #fabric: FabricLink
  readonly #listeners = new Map<string, Listener>()
  readonly #ends = new Set<MemoryChannel>()
  #closed = false

  constructor(site: string, fabric: FabricLink) {
    this.site = site
    this.#fabric = fabric
    this.namespaceServer = fabric.namespaceServer
    this.identity = fabric.identity
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closed
  }

  async listen(service: string, onChannel: (channel: Channel) => void): Promise<() => Promise<void>> {
    this.#assertOpen('listen')
    const name = decode(NonEmptyText, service, 'service')
    if (this.#listeners.has(name)) {
      throw new DrError('E_CONFLICT', `service "${name}" on site "${this.site}" already has a listener`, {
        adapter: 'memory',
        site: this.site,
        service: name,
      })
    }
    const listener: Listener = { onChannel }
    this.#listeners.set(name, listener)
    return async () => {
      if (this.#listeners.get(name) === listener) this.#listeners.delete(name)
    }
  }

  async connect(site: string, service: string): Promise<Channel> {
    this.#assertOpen('connect')
    const remote = decode(Name, site, 'site')
    const name = decode(NonEmptyText, service, 'service')
    await this.#delay(2 * this.#fabric.latencyMs)
    this.#assertOpen('connect')
    const target = this.#fabric.livePort(remote)
    if (target === undefined || !this.#fabric.reachable(this.site, remote)) {
      throw new DrError('E_UNAVAILABLE', `site "${remote}" cannot be reached from "${this.site}"`, {
        adapter: 'memory',
        site: remote,
      })
    }
    return target.#accept(this, name)
  }

  async probe(site: string, timeoutMs?: number): Promise<ProbeResult> {
    this.#assertOpen('probe')
    const remote = decode(Name, site, 'site')
    const answers = (): boolean => this.#fabric.livePort(remote) !== undefined && this.#fabric.reachable(this.site, remote)
    if (!answers()) return { site: remote, reachable: false }
    const rttMs = 2 * this.#fabric.latencyMs
    if (timeoutMs !== undefined && rttMs > timeoutMs) {
      await this.#delay(timeoutMs)
      return { site: remote, reachable: false }
    }
    await this.#delay(rttMs)
    return answers() ? { site: remote, reachable: true, rttMs } : { site: remote, reachable: false }
  }

  async presentToken(token: FenceToken): Promise<void> {
    this.#assertOpen('presentToken')
    await this.namespaceServer.presentToken(token)
    await this.identity.presentToken(token)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#listeners.clear()
    await Promise.all([...this.#ends].map((end) => end.close()))
  }

  #accept(client: MemoryNetworkPort, service: string): Channel {
    const listener = this.#listeners.get(service)
    if (listener === undefined) {
      throw new DrError('E_UNAVAILABLE', `nothing listens on service "${service}" at site "${this.site}"`, {
        adapter: 'memory',
        site: this.site,
        service,
      })
    }
    const pair = this.#fabric.openPair(client.site, this.site, (end) => {
      client.#ends.delete(end)
      this.#ends.delete(end)
    })
    client.#ends.add(pair.client)
    this.#ends.add(pair.server)
    try {
      listener.onChannel(pair.server)
    } catch (error) {
      void pair.client.close()
      void pair.server.close()
      throw new DrError('E_UNAVAILABLE', `the listener of service "${service}" at site "${this.site}" refused the channel`, {
        adapter: 'memory',
        site: this.site,
        service,
      }, { cause: error })
    }
    return pair.client
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new DrError('E_CLOSED', `memory.network.${operation}: the port of site "${this.site}" is closed`, {
        adapter: 'memory',
        operation,
        site: this.site,
      })
    }
  }

  async #delay(ms: number): Promise<void> {
    if (ms > 0) await this.#fabric.clock.sleep(ms)
  }
}
