import * as t from 'io-ts'
import { Buffer } from 'node:buffer'
import { DrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { implementing, Name, PositiveInt } from '../../kernel/codecs.js'
import type { Clock } from '../../kernel/clock.js'
import type { IdentityRegistry, NamespaceServer } from '../../ports/network.js'
import { DEFAULT_MAX_FRAME_BYTES } from './framing.js'
import { isLoopbackHost, type TcpTlsMaterial } from './tls.js'
import type { TcpWindow } from './tcp-channel.js'

/**
 * A host and TCP port: where a site listens, or where a peer site is reached.
 *
 * @public
 */
export interface TcpAddress {
  readonly host: string
  readonly port: number
}

/**
 * Options of {@link tcpNetwork}. Channels are mutually authenticated TLS unless `plaintext: true` is given, which
 * is allowed only when the listen address and every peer address are loopback addresses.
 *
 * @public
 */
export interface TcpNetworkOptions {
  /** The site this port belongs to; with TLS, the name its certificate must carry. */
  readonly site: string
  /** Where to accept connections: `host` (default `127.0.0.1`) and `port` (`0` picks a free one; see `address()`). */
  readonly listen: { readonly host?: string; readonly port: number }
  /** Where each other site listens. More can be added later with `setPeer`. */
  readonly peers: Readonly<Record<string, TcpAddress>>
  /** The site's key and certificate and the CA it trusts (PEM). Required unless `plaintext` is set. */
  readonly tls?: TcpTlsMaterial
  /** Unencrypted, unauthenticated channels: for loopback tests and demos only. */
  readonly plaintext?: true
  /** The embedder's namespace server (DFS-like), exposed as `namespaceServer`. */
  readonly namespaceServer?: NamespaceServer
  /** The embedder's identity registry (addresses, name records), exposed as `identity`. */
  readonly identity?: IdentityRegistry
  /** The clock for timeouts and bandwidth limits (default: the system clock). */
  readonly clock?: Clock
  /** What each channel direction may have in flight (default 64 frames or 8 MiB, whichever comes first). */
  readonly window?: { readonly frames?: number; readonly bytes?: number }
  /** How long a connect may take, TCP and TLS and handshake together (default 10 s). */
  readonly connectTimeoutMs?: number
  /** How long a probe waits when the caller gives no timeout (default 3 s). */
  readonly probeTimeoutMs?: number
  /** The largest frame a channel carries (default 64 MiB). */
  readonly maxFrameBytes?: number
}

/** {@link TcpNetworkOptions} after validation and defaults. */
export interface ResolvedTcpOptions {
  readonly site: string
  readonly listen: TcpAddress
  readonly peers: Map<string, TcpAddress>
  readonly tls: TcpTlsMaterial | undefined
  readonly namespaceServer: NamespaceServer | undefined
  readonly identity: IdentityRegistry | undefined
  readonly clock: Clock | undefined
  readonly window: TcpWindow
  readonly connectTimeoutMs: number
  readonly probeTimeoutMs: number
  readonly maxFrameBytes: number
}

const HostName = new t.Type<string, string, unknown>(
  'HostName (a non-empty host name or IP address)',
  (u): u is string => typeof u === 'string' && /^[A-Za-z0-9:._%[\]-]{1,255}$/.test(u),
  (u, c) => (typeof u === 'string' && /^[A-Za-z0-9:._%[\]-]{1,255}$/.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const PortNumber = new t.Type<number, number, unknown>(
  'PortNumber (0-65535)',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 0 && u <= 65535,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 0 && u <= 65535 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const Pem = new t.Type<string | Buffer, string | Buffer, unknown>(
  'PEM text (string or Buffer)',
  (u): u is string | Buffer => (typeof u === 'string' && u.length > 0) || (Buffer.isBuffer(u) && u.length > 0),
  (u, c) => ((typeof u === 'string' && u.length > 0) || (Buffer.isBuffer(u) && u.length > 0) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const bounded = (name: string, max: number): t.Type<number, number, unknown> =>
  new t.Type<number, number, unknown>(
    `${name} (a positive integer up to ${max})`,
    (u): u is number => PositiveInt.is(u) && u <= max,
    (u, c) => (PositiveInt.is(u) && u <= max ? t.success(u) : t.failure(u, c)),
    t.identity,
  )

/** The address codec used for `listen` and for peers. */
export const TcpAddressCodec = t.type({ host: HostName, port: PortNumber }, 'TcpAddress')

/**
 * The io-ts codec of {@link TcpNetworkOptions}.
 *
 * @public
 */
export const TcpNetworkOptionsCodec = t.intersection(
  [
    t.type({
      site: Name,
      listen: t.intersection([t.type({ port: PortNumber }), t.partial({ host: HostName })]),
      peers: t.record(Name, TcpAddressCodec),
    }),
    t.partial({
      tls: t.type({ key: Pem, cert: Pem, ca: Pem }),
      plaintext: t.literal(true),
      namespaceServer: implementing<NamespaceServer>('NamespaceServer', ['readNamespace', 'writeNamespace', 'patchNamespace', 'resolve', 'presentToken']),
      identity: implementing<IdentityRegistry>('IdentityRegistry', [
        'claimAddress',
        'releaseAddress',
        'addressOwner',
        'setNameRecord',
        'getNameRecord',
        'deleteNameRecord',
        'presentToken',
      ]),
      clock: implementing<Clock>('Clock', ['now', 'setTimer', 'sleep']),
      window: t.partial({ frames: bounded('window.frames', 65_536), bytes: bounded('window.bytes', 1024 ** 3) }),
      connectTimeoutMs: bounded('connectTimeoutMs', 3_600_000),
      probeTimeoutMs: bounded('probeTimeoutMs', 3_600_000),
      maxFrameBytes: bounded('maxFrameBytes', 1024 ** 3),
    }),
  ],
  'TcpNetworkOptions',
)

function invalid(message: string, details: Record<string, unknown>): DrError {
  return new DrError('E_INVALID_INPUT', `invalid tcpNetwork options: ${message}`, { adapter: 'tcp', ...details })
}

/** Throws `E_INVALID_INPUT` when a plaintext port would talk to or listen on a non-loopback address. */
export function assertPlaintextAllowed(tls: TcpTlsMaterial | undefined, what: string, host: string): void {
  if (tls === undefined && !isLoopbackHost(host)) {
    throw invalid(`${what} "${host}" is not a loopback address; plaintext is allowed on loopback only (configure tls)`, { what, host })
  }
}

/** Validates `input` and applies defaults; throws `E_INVALID_INPUT` naming the broken rule. */
export function resolveTcpOptions(input: unknown): ResolvedTcpOptions {
  const options = decode(TcpNetworkOptionsCodec, input, 'tcpNetwork options')
  if (options.tls === undefined && options.plaintext !== true) {
    throw invalid('field "tls" is required: channels are mutually authenticated TLS unless "plaintext: true" is set (loopback only)', {
      path: 'tls',
    })
  }
  if (options.tls !== undefined && options.plaintext === true) {
    throw invalid('"tls" and "plaintext" exclude each other', { path: 'plaintext' })
  }
  const listen = { host: options.listen.host ?? '127.0.0.1', port: options.listen.port }
  assertPlaintextAllowed(options.tls, 'listen host', listen.host)
  const peers = new Map<string, TcpAddress>()
  for (const [site, address] of Object.entries(options.peers)) {
    assertPlaintextAllowed(options.tls, `peer "${site}" host`, address.host)
    peers.set(site, { host: address.host, port: address.port })
  }
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  return {
    site: options.site,
    listen,
    peers,
    tls: options.tls,
    namespaceServer: options.namespaceServer,
    identity: options.identity,
    clock: options.clock,
    window: { frames: options.window?.frames ?? 64, bytes: options.window?.bytes ?? 8 * 1024 * 1024 },
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    probeTimeoutMs: options.probeTimeoutMs ?? 3_000,
    maxFrameBytes,
  }
}

/** Validates one peer address given to `setPeer`. */
export function resolvePeer(tls: TcpTlsMaterial | undefined, site: unknown, address: unknown): [string, TcpAddress] {
  const name = decode(Name, site, 'tcp peer site')
  const decoded = decode(TcpAddressCodec, address, `tcp peer "${name}" address`)
  assertPlaintextAllowed(tls, `peer "${name}" host`, decoded.host)
  return [name, { host: decoded.host, port: decoded.port }]
}
