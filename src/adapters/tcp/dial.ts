import * as net from 'node:net'
import * as tls from 'node:tls'
import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import { FrameConnection } from './frame-connection.js'
import { FrameType } from './framing.js'
import { AcceptCodec, decodeHandshake, encodeHandshake, RefuseCodec, TCP_PROTOCOL_VERSION, type Accept, type Hello } from './handshake.js'
import { peerIdentityProblem, tlsClientOptions, type TcpTlsMaterial } from './tls.js'
import type { TcpAddress } from './tcp-options.js'
import type { TcpWindow } from './tcp-channel.js'

/** Everything needed to open one connection to a site and get through the handshake. */
export interface DialRequest {
  readonly localSite: string
  readonly targetSite: string
  readonly address: TcpAddress
  readonly tls: TcpTlsMaterial | undefined
  readonly kind: Hello['kind']
  readonly service: string
  readonly channelId: string
  readonly window: TcpWindow
  readonly clock: Clock
  readonly timeoutMs: number
  readonly maxFrameBytes: number
  /** Called when the server's certificate does not prove it is `targetSite`. */
  readonly onServerRejected: (reason: string, remoteAddress: string | undefined) => void
}

/** An accepted connection: frames after the acceptance wait in `connection` for the channel to take them. */
export interface Dialled {
  readonly connection: FrameConnection
  readonly accept: Accept
}

function unavailable(request: DialRequest, why: string, details: Record<string, unknown> = {}, cause?: unknown): DrError {
  const { targetSite, address, service } = request
  return new DrError(
    'E_UNAVAILABLE',
    `tcp: cannot reach ${request.kind === 'probe' ? '' : `service "${service}" on `}site "${targetSite}" at ${address.host}:${address.port}: ${why}`,
    { adapter: 'tcp', site: targetSite, service, host: address.host, port: address.port, ...details },
    { cause },
  )
}

function openSocket(request: DialRequest): net.Socket {
  const { host, port } = request.address
  return request.tls === undefined ? net.connect({ host, port }) : tls.connect(tlsClientOptions(request.tls, host, port))
}

/**
 * Connects to a site, proves on TLS that the server is the site asked for, sends the handshake and waits for the
 * acceptance, all within `timeoutMs`. Rejects with `E_UNAVAILABLE` for anything that stops it (refused connection,
 * timeout, failed authentication, refusal by the server), naming the site, service and address.
 */
export function dial(request: DialRequest): Promise<Dialled> {
  return new Promise<Dialled>((resolve, reject) => {
    const socket = openSocket(request)
    let connection: FrameConnection | undefined
    let settled = false
    const settle = (outcome: Dialled | DrError): void => {
      if (settled) return
      settled = true
      cancelTimer()
      if (outcome instanceof DrError) {
        if (connection === undefined) socket.destroy()
        else connection.destroy(outcome)
        reject(outcome)
      } else {
        socket.removeListener('error', onEarlyError)
        resolve(outcome)
      }
    }
    const cancelTimer = request.clock.setTimer(request.timeoutMs, () =>
      settle(unavailable(request, `no answer within ${request.timeoutMs} ms`, { timeoutMs: request.timeoutMs })),
    )
    const onEarlyError = (error: Error): void => settle(unavailable(request, error.message, { cause: (error as NodeJS.ErrnoException).code }, error))
    socket.on('error', onEarlyError)
    socket.once('close', () => settle(unavailable(request, 'the connection closed during the handshake')))
    socket.once(request.tls === undefined ? 'connect' : 'secureConnect', () => {
      if (settled) return
      if (socket instanceof tls.TLSSocket) {
        const problem = peerIdentityProblem(socket, request.targetSite)
        if (problem !== undefined) {
          request.onServerRejected(problem, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`)
          settle(unavailable(request, `the server failed authentication: ${problem}`, { refusal: 'authentication' }))
          return
        }
      }
      const opened = new FrameConnection(socket, request.maxFrameBytes)
      connection = opened
      opened.setEndListener((end) => settle(end.clean ? unavailable(request, 'the server closed the connection') : unavailable(request, end.error.message, {}, end.error)))
      opened.setHandler((frame) => {
        try {
          if (frame.type === FrameType.refuse) {
            const refusal = decodeHandshake(RefuseCodec, frame.payload, 'refuse')
            settle(unavailable(request, `refused: ${refusal.message}`, { refusal: refusal.reason }))
            return
          }
          if (frame.type !== FrameType.accept) {
            settle(unavailable(request, `the server answered the handshake with frame type ${frame.type}`))
            return
          }
          const accept = decodeHandshake(AcceptCodec, frame.payload, 'accept')
          if (accept.site !== request.targetSite) {
            settle(unavailable(request, `the server is site "${accept.site}"`, { refusal: 'wrong-site' }))
            return
          }
          opened.detach()
          settle({ connection: opened, accept })
        } catch (error) {
          settle(unavailable(request, 'the handshake answer was malformed', {}, error))
        }
      })
      const hello: Hello = {
        version: TCP_PROTOCOL_VERSION,
        kind: request.kind,
        site: request.localSite,
        target: request.targetSite,
        service: request.service,
        channel: request.channelId,
        window: request.window,
        maxFrameBytes: request.maxFrameBytes,
      }
      opened.send(FrameType.hello, encodeHandshake(hello))
    })
  })
}
