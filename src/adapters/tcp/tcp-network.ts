import { randomUUID } from 'node:crypto'
import * as net from 'node:net'
import * as tls from 'node:tls'
import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { Name } from '../../kernel/codecs.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Channel, IdentityRegistry, NamespaceServer, NetworkPort, PeerRejection, ProbeResult } from '../../ports/network.js'
import { dial, type DialRequest } from './dial.js'
import type { FrameConnection } from './frame-connection.js'
import type { Hello } from './handshake.js'
import { InboundHandshakes } from './inbound.js'
import { RejectionReporter } from './peer-rejection.js'
import { tlsServerOptions } from './tls.js'
import { TcpChannel, type TcpWindow } from './tcp-channel.js'
import { resolvePeer, resolveTcpOptions, type ResolvedTcpOptions, type TcpAddress, type TcpNetworkOptions } from './tcp-options.js'

/**
 * The network port of one site over TCP: a `NetworkPort` plus what only a real network has — the bound address,
 * peer addresses learned at run time, and reports of peers refused for failing authentication.
 *
 * @public
 */
export interface TcpNetwork extends NetworkPort {
  readonly kind: 'tcp'
  /** Where this port accepts connections (the actual port when it was asked to pick one). */
  address(): Promise<TcpAddress>
  /** Sets or replaces where `site` is reached. */
  setPeer(site: string, address: TcpAddress): void
  /** Calls `listener` for every refused peer; returns a function that stops the calls. */
  onPeerRejected(listener: (rejection: PeerRejection) => void): () => void
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}

const ServiceName = new t.Type<string, string, unknown>(
  'ServiceName (1-256 characters)',
  (u): u is string => typeof u === 'string' && u.length > 0 && u.length <= 256,
  (u, c) => (typeof u === 'string' && u.length > 0 && u.length <= 256 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/** How long a closing channel waits for the peer to finish the connection before tearing it down. */
const CLOSE_GRACE_MS = 2_000

/**
 * Creates the tcp network port of a site: it starts listening at once (see `address()`), connects to peers by
 * the addresses in `peers` (and `setPeer`), and carries channels as checked frames with back-pressure, bandwidth
 * limits and mutual TLS. Throws `E_INVALID_INPUT` for bad options, including plaintext on a non-loopback address.
 *
 * @public
 */
export function tcpNetwork(options: TcpNetworkOptions): TcpNetwork {
  return new TcpNetworkPort(resolveTcpOptions(options))
}

class TcpNetworkPort implements TcpNetwork {
  readonly kind = 'tcp' as const
  readonly site: string
  readonly #options: ResolvedTcpOptions
  readonly #clock: Clock
  readonly #server: net.Server
  readonly #ready: Promise<void>
  readonly #listeners = new Map<string, (channel: Channel) => void>()
  readonly #channels = new Set<TcpChannel>()
  readonly #inbound: InboundHandshakes
  /** Every TCP connection accepted and not yet closed, TLS handshake or not. */
  readonly #accepted = new Set<net.Socket>()
  readonly #rejections = new RejectionReporter()
  #closing: Promise<void> | undefined

  constructor(options: ResolvedTcpOptions) {
    this.site = options.site
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#inbound = new InboundHandshakes({
      site: options.site,
      clock: this.#clock,
      timeoutMs: options.connectTimeoutMs,
      closeGraceMs: CLOSE_GRACE_MS,
      maxFrameBytes: options.maxFrameBytes,
      window: options.window,
      rejections: this.#rejections,
      isClosing: () => this.#closing !== undefined,
      listener: (service) => this.#listeners.get(service),
      openChannel: (hello: Hello, connection: FrameConnection) =>
        this.#openChannel(hello.channel, hello.site, connection, hello.window, hello.maxFrameBytes),
    })
    if (options.tls === undefined) {
      this.#server = net.createServer((socket) => this.#inbound.accept(socket))
    } else {
      const server = tls.createServer({ ...tlsServerOptions(options.tls), handshakeTimeout: options.connectTimeoutMs }, (socket) =>
        this.#inbound.accept(socket),
      )
      server.on('tlsClientError', (error, socket) =>
        this.#rejections.report({
          reason: `TLS handshake failed: ${error.message}`,
          remoteAddress: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
          claimedSite: undefined,
          direction: 'inbound',
        }),
      )
      this.#server = server
    }
    this.#server.on('connection', (socket: net.Socket) => {
      this.#accepted.add(socket)
      socket.once('close', () => this.#accepted.delete(socket))
    })
    this.#ready = new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void =>
        reject(
          new DrError('E_UNAVAILABLE', `tcp: site "${this.site}" cannot listen on ${options.listen.host}:${options.listen.port}: ${error.message}`, {
            adapter: 'tcp',
            site: this.site,
            ...options.listen,
          }, { cause: error }),
        )
      this.#server.once('error', onError)
      this.#server.listen(options.listen.port, options.listen.host, () => {
        this.#server.removeListener('error', onError)
        this.#server.on('error', () => undefined)
        resolve()
      })
    })
    this.#ready.catch(() => undefined)
  }

  get namespaceServer(): NamespaceServer {
    return this.#configured(this.#options.namespaceServer, 'namespace server', 'namespaceServer')
  }

  get identity(): IdentityRegistry {
    return this.#configured(this.#options.identity, 'identity registry', 'identity')
  }

  async address(): Promise<TcpAddress> {
    this.#assertOpen('address')
    await this.#ready
    const bound = this.#server.address()
    if (bound === null || typeof bound === 'string') {
      throw new DrError('E_UNAVAILABLE', `tcp: site "${this.site}" is not listening`, { adapter: 'tcp', site: this.site })
    }
    return { host: this.#options.listen.host, port: bound.port }
  }

  setPeer(site: string, address: TcpAddress): void {
    this.#assertOpen('setPeer')
    const [name, resolved] = resolvePeer(this.#options.tls, site, address)
    this.#options.peers.set(name, resolved)
  }

  onPeerRejected(listener: (rejection: PeerRejection) => void): () => void {
    if (typeof listener !== 'function') {
      throw new DrError('E_INVALID_INPUT', 'tcp onPeerRejected: listener must be a function', { adapter: 'tcp', site: this.site })
    }
    return this.#rejections.subscribe(listener)
  }

  async listen(service: string, onChannel: (channel: Channel) => void): Promise<() => Promise<void>> {
    this.#assertOpen('listen')
    const name = decode(ServiceName, service, 'service')
    if (typeof onChannel !== 'function') {
      throw new DrError('E_INVALID_INPUT', 'tcp listen: onChannel must be a function', { adapter: 'tcp', service: name })
    }
    if (this.#listeners.has(name)) {
      throw new DrError('E_CONFLICT', `service "${name}" on site "${this.site}" already has a listener`, { adapter: 'tcp', site: this.site, service: name })
    }
    this.#listeners.set(name, onChannel)
    try {
      await this.#ready
    } catch (error) {
      this.#listeners.delete(name)
      throw error
    }
    return async () => {
      if (this.#listeners.get(name) === onChannel) this.#listeners.delete(name)
    }
  }

  async connect(site: string, service: string): Promise<Channel> {
    this.#assertOpen('connect')
    const remote = decode(Name, site, 'site')
    const name = decode(ServiceName, service, 'service')
    const address = this.#peerAddress(remote)
    const channelId = `${this.site}->${remote}#${randomUUID()}`
    const { connection, accept } = await this.#dial(remote, address, {
      kind: 'channel',
      service: name,
      channelId,
      timeoutMs: this.#options.connectTimeoutMs,
    })
    if (this.#closing !== undefined) {
      connection.destroy()
      this.#assertOpen('connect')
    }
    return this.#openChannel(channelId, remote, connection, accept.window, accept.maxFrameBytes)
  }

  async probe(site: string, timeoutMs?: number): Promise<ProbeResult> {
    this.#assertOpen('probe')
    const remote = decode(Name, site, 'site')
    const timeout = timeoutMs === undefined ? this.#options.probeTimeoutMs : Math.max(1, Math.floor(timeoutMs))
    const address = this.#options.peers.get(remote)
    if (address === undefined) return { site: remote, reachable: false }
    const started = this.#clock.now()
    try {
      const { connection } = await this.#dial(remote, address, {
        kind: 'probe',
        service: '',
        channelId: `${this.site}->${remote}#probe`,
        timeoutMs: timeout,
      })
      connection.destroy()
      return { site: remote, reachable: true, rttMs: this.#clock.now() - started }
    } catch {
      return { site: remote, reachable: false }
    }
  }

  /** Presents the token to the namespace server and identity registry this port was given (those it has). */
  async presentToken(token: FenceToken): Promise<void> {
    this.#assertOpen('presentToken')
    await this.#options.namespaceServer?.presentToken(token)
    await this.#options.identity?.presentToken(token)
  }

  close(): Promise<void> {
    if (this.#closing === undefined) this.#closing = this.#close()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #close(): Promise<void> {
    this.#listeners.clear()
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#inbound.destroyAll()
    await Promise.all([...this.#channels].map((channel) => channel.close()))
    for (const socket of this.#accepted) socket.destroy()
    await stopped
  }

  /** Connects to `remote` at `address` and gets through the handshake with this port's settings. */
  #dial(remote: string, address: TcpAddress, what: Pick<DialRequest, 'kind' | 'service' | 'channelId' | 'timeoutMs'>): ReturnType<typeof dial> {
    return dial({
      ...what,
      localSite: this.site,
      targetSite: remote,
      address,
      tls: this.#options.tls,
      window: this.#options.window,
      clock: this.#clock,
      maxFrameBytes: this.#options.maxFrameBytes,
      onServerRejected: (reason, remoteAddress) => this.#rejections.report({ reason, remoteAddress, claimedSite: remote, direction: 'outbound' }),
    })
  }

  #peerAddress(site: string): TcpAddress {
    const address = this.#options.peers.get(site)
    if (address === undefined) {
      throw new DrError('E_UNAVAILABLE', `tcp: site "${this.site}" knows no address for site "${site}"`, { adapter: 'tcp', site })
    }
    return address
  }

  #openChannel(id: string, remoteSite: string, connection: FrameConnection, sendWindow: TcpWindow, peerMaxFrameBytes: number): TcpChannel {
    const channel = new TcpChannel({
      id,
      localSite: this.site,
      remoteSite,
      connection,
      sendWindow,
      maxSendBytes: Math.min(peerMaxFrameBytes, this.#options.maxFrameBytes),
      receiveWindow: this.#options.window,
      clock: this.#clock,
      closeGraceMs: CLOSE_GRACE_MS,
      onFinished: (finished) => this.#channels.delete(finished),
    })
    this.#channels.add(channel)
    return channel
  }

  /** `value`, or `E_PRECONDITION` explaining that the embedder must configure the `option` adapter. */
  #configured<T>(value: T | undefined, what: string, option: string): T {
    if (value !== undefined) return value
    throw new DrError(
      'E_PRECONDITION',
      `tcp network of site "${this.site}" has no ${what}: the tcp adapter is only a transport; configure a ${what} adapter (option "${option}")`,
      { adapter: 'tcp', site: this.site, option },
    )
  }

  #assertOpen(operation: string): void {
    if (this.#closing !== undefined) {
      throw new DrError('E_CLOSED', `tcp.network.${operation}: the network port of site "${this.site}" is closed`, {
        adapter: 'tcp',
        operation,
        site: this.site,
      })
    }
  }
}
