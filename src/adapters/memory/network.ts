import { DrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { Name } from '../../kernel/codecs.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import type { NetworkPort } from '../../ports/network.js'
import { ChannelPair } from './network-channel.js'
import type { FrameWindow, PipeOptions } from './network-pipe.js'
import { MemoryNetworkPort, type FabricLink } from './network-port.js'
import { MemoryNamespaceServer } from './network-namespace-server.js'
import { MemoryIdentityRegistry } from './network-identity-registry.js'

export { MemoryNamespaceServer } from './network-namespace-server.js'
export { MemoryIdentityRegistry } from './network-identity-registry.js'

/**
 * Options of a {@link MemoryNetworkFabric}: the clock that latency and bandwidth limits run on (default: the
 * system clock), the one-way latency of every frame and connection leg (default 0), and the in-flight window
 * of each channel direction (default 64 frames or 4 MiB, whichever is reached first).
 *
 * @public
 */
export interface MemoryNetworkFabricOptions {
  readonly clock?: Clock
  readonly latencyMs?: number
  readonly window?: Partial<FrameWindow>
}

const DEFAULT_WINDOW: FrameWindow = { frames: 64, bytes: 4 * 1024 * 1024 }

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new DrError('E_INVALID_INPUT', `memory network: ${what} must be a positive integer, got ${value}`, { what, value })
  }
  return value
}

/**
 * A simulated network joining the sites of one process, for tests and examples. Each site gets a
 * `NetworkPort` of kind `memory` from {@link MemoryNetworkFabric.port}; channels between them are ordered,
 * framed and reliable, with back-pressure, optional latency and per-channel bandwidth limits on the fabric's
 * clock. Tests cut sites apart with `partition` / `isolate` (open channels between them break with
 * `E_UNAVAILABLE`) and join them again with `heal` / `healAll`. Every port shares the fabric's namespace
 * server and identity registry.
 *
 * @public
 */
export class MemoryNetworkFabric {
  /** The namespace server every port of this fabric talks to. */
  readonly namespaceServer = new MemoryNamespaceServer()
  /** The identity registry every port of this fabric talks to. */
  readonly identity = new MemoryIdentityRegistry()
  readonly #pipe: PipeOptions
  readonly #link: FabricLink
  readonly #ports = new Map<string, MemoryNetworkPort>()
  readonly #partitions = new Set<string>()
  readonly #pairs = new Set<ChannelPair>()
  #channelCount = 0

  constructor(options: MemoryNetworkFabricOptions = {}) {
    const latencyMs = options.latencyMs ?? 0
    if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) {
      throw new DrError('E_INVALID_INPUT', `memory network: latencyMs must be a non-negative number, got ${latencyMs}`, { latencyMs })
    }
    const clock = options.clock ?? systemClock
    this.#pipe = {
      clock,
      latencyMs,
      window: {
        frames: positive(options.window?.frames, DEFAULT_WINDOW.frames, 'window.frames'),
        bytes: positive(options.window?.bytes, DEFAULT_WINDOW.bytes, 'window.bytes'),
      },
    }
    this.#link = {
      clock,
      latencyMs,
      namespaceServer: this.namespaceServer,
      identity: this.identity,
      reachable: (from, to) => from === to || !this.#partitions.has(pairKey(from, to)),
      livePort: (site) => {
        const port = this.#ports.get(site)
        return port === undefined || port.closed ? undefined : port
      },
      openPair: (clientSite, serverSite, onClose) => {
        const id = `${clientSite}->${serverSite}#${++this.#channelCount}`
        const pair = new ChannelPair(id, clientSite, serverSite, this.#pipe, (end) => {
          this.#pairs.delete(pair)
          onClose(end)
        })
        this.#pairs.add(pair)
        return pair
      },
    }
  }

  /**
   * The network port of `site`. The same port is returned until it is closed; after that a fresh one (a site
   * that restarted).
   */
  port(site: string): NetworkPort {
    const name = decode(Name, site, 'site')
    const existing = this.#link.livePort(name)
    if (existing !== undefined) return existing
    const port = new MemoryNetworkPort(name, this.#link)
    this.#ports.set(name, port)
    return port
  }

  /** Cuts `siteA` off from `siteB`: open channels between them break, connects and probes fail. */
  partition(siteA: string, siteB: string): void {
    const a = decode(Name, siteA, 'site')
    const b = decode(Name, siteB, 'site')
    if (a === b) return
    this.#partitions.add(pairKey(a, b))
    for (const pair of [...this.#pairs]) {
      if (!pair.joins(a, b)) continue
      this.#pairs.delete(pair)
      pair.break(`was broken by a partition between "${a}" and "${b}"`)
    }
  }

  /** Joins `siteA` and `siteB` again (channels broken by the partition stay broken; open new ones). */
  heal(siteA: string, siteB: string): void {
    this.#partitions.delete(pairKey(decode(Name, siteA, 'site'), decode(Name, siteB, 'site')))
  }

  /** Partitions `site` from every other site that has a port on this fabric now. */
  isolate(site: string): void {
    const name = decode(Name, site, 'site')
    for (const other of this.#ports.keys()) this.partition(name, other)
  }

  /** Removes every partition. */
  healAll(): void {
    this.#partitions.clear()
  }
}
