import type * as net from 'node:net'
import * as tls from 'node:tls'
import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { Channel } from '../../ports/network.js'
import { FrameConnection } from './frame-connection.js'
import { FrameType, type FrameTypeCode, type WireFrame } from './framing.js'
import { decodeHandshake, encodeHandshake, HANDSHAKE_MAX_FRAME_BYTES, HelloCodec, TCP_PROTOCOL_VERSION, type Hello, type Refuse } from './handshake.js'
import type { RejectionReporter } from './peer-rejection.js'
import { peerIdentityProblem } from './tls.js'
import type { TcpChannel, TcpWindow } from './tcp-channel.js'

/** What the inbound side of a port needs from the port. */
export interface InboundContext {
  readonly site: string
  readonly clock: Clock
  /** How long a connection may take to send its hello. */
  readonly timeoutMs: number
  /** How long a refused connection may take to go away by itself. */
  readonly closeGraceMs: number
  readonly maxFrameBytes: number
  readonly window: TcpWindow
  readonly rejections: RejectionReporter
  isClosing(): boolean
  listener(service: string): ((channel: Channel) => void) | undefined
  openChannel(hello: Hello, connection: FrameConnection): TcpChannel
}

/**
 * The server side of the handshake: takes each accepted connection through its hello — protocol version, the
 * client's proof (on TLS) that it is the site it claims, the target site and the service — and either hands it to
 * the service's listener as a channel or refuses it. Nothing a refused peer sent ever reaches a listener, and until
 * its hello has been checked a connection may send no frame over {@link HANDSHAKE_MAX_FRAME_BYTES}: the channel's
 * full frame size is granted only to an authenticated peer. A TLS client whose certificate did not verify is known
 * from the start (`socket.authorized`); its small hello is read only to report the site it claimed, then it is
 * refused.
 */
export class InboundHandshakes {
  readonly #context: InboundContext
  readonly #pending = new Set<FrameConnection>()

  constructor(context: InboundContext) {
    this.#context = context
  }

  /** Starts the handshake of a newly accepted (and, on TLS, negotiated) connection. */
  accept(socket: net.Socket): void {
    socket.on('error', () => undefined)
    if (this.#context.isClosing()) {
      socket.destroy()
      return
    }
    const connection = new FrameConnection(socket, HANDSHAKE_MAX_FRAME_BYTES)
    const remoteAddress = connection.remoteAddress
    this.#pending.add(connection)
    // A TLS client whose certificate did not verify is given only the close grace to name the site it claims.
    const untrusted = socket instanceof tls.TLSSocket && !socket.authorized ? peerIdentityProblem(socket, '') : undefined
    const cancelTimer = this.#context.clock.setTimer(untrusted === undefined ? this.#context.timeoutMs : this.#context.closeGraceMs, () => {
      if (untrusted !== undefined) this.#context.rejections.report({ reason: untrusted, remoteAddress, claimedSite: undefined, direction: 'inbound' })
      connection.destroy()
    })
    connection.setEndListener((end) => {
      cancelTimer()
      this.#pending.delete(connection)
      if (!end.clean && end.error.code === 'E_CORRUPT') {
        this.#context.rejections.report({ reason: `protocol violation: ${end.error.message}`, remoteAddress, claimedSite: undefined, direction: 'inbound' })
      }
    })
    connection.setHandler((frame) => {
      cancelTimer()
      this.#pending.delete(connection)
      connection.detach()
      this.#onHello(connection, frame)
    })
  }

  /** Tears down every connection still in its handshake. */
  destroyAll(): void {
    for (const connection of this.#pending) connection.destroy()
    this.#pending.clear()
  }

  #onHello(connection: FrameConnection, frame: WireFrame): void {
    const { site, rejections } = this.#context
    const remoteAddress = connection.remoteAddress
    let hello: Hello
    try {
      if (frame.type !== FrameType.hello) throw new DrError('E_CORRUPT', `the first frame has type ${frame.type}, not hello`)
      hello = decodeHandshake(HelloCodec, frame.payload, 'hello')
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      rejections.report({ reason: `protocol violation: ${reason}`, remoteAddress, claimedSite: undefined, direction: 'inbound' })
      connection.destroy()
      return
    }
    if (hello.version !== TCP_PROTOCOL_VERSION) {
      return this.#refuse(connection, { reason: 'version', message: `site "${site}" speaks tcp protocol ${TCP_PROTOCOL_VERSION}, not ${hello.version}` })
    }
    const socket = connection.socket
    if (socket instanceof tls.TLSSocket) {
      // socket.authorized was settled when the TLS handshake finished: an unverified client gets no further.
      const problem = peerIdentityProblem(socket, hello.site)
      if (problem !== undefined) {
        rejections.report({ reason: problem, remoteAddress, claimedSite: hello.site, direction: 'inbound' })
        return this.#refuse(connection, { reason: 'authentication', message: `authentication as site "${hello.site}" failed` })
      }
    }
    if (hello.target !== site) {
      return this.#refuse(connection, { reason: 'wrong-site', message: `this is site "${site}", not "${hello.target}"` })
    }
    if (this.#context.isClosing()) {
      return this.#refuse(connection, { reason: 'closed', message: `the network port of site "${site}" is closed` })
    }
    const accept = encodeHandshake({
      version: TCP_PROTOCOL_VERSION,
      site,
      window: this.#context.window,
      maxFrameBytes: this.#context.maxFrameBytes,
    })
    if (hello.kind === 'probe') return this.#answerAndEnd(connection, FrameType.accept, accept)
    const onChannel = this.#context.listener(hello.service)
    if (onChannel === undefined) {
      return this.#refuse(connection, { reason: 'no-listener', message: `nothing listens on service "${hello.service}" at site "${site}"` })
    }
    connection.setMaxFrameBytes(this.#context.maxFrameBytes)
    connection.send(FrameType.accept, accept)
    const channel = this.#context.openChannel(hello, connection)
    try {
      onChannel(channel)
    } catch {
      void channel.close()
    }
  }

  #refuse(connection: FrameConnection, refusal: Refuse): void {
    this.#answerAndEnd(connection, FrameType.refuse, encodeHandshake(refusal))
  }

  /** Sends a last handshake frame and ends the connection, tearing it down if the peer does not finish it. */
  #answerAndEnd(connection: FrameConnection, type: FrameTypeCode, payload: Uint8Array): void {
    connection.send(type, payload)
    connection.end()
    const cancel = this.#context.clock.setTimer(this.#context.closeGraceMs, () => connection.destroy())
    connection.setEndListener(() => cancel())
  }
}
