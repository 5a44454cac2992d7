import * as t from 'io-ts'
import { Etcd3, isRecoverableError, GRPCDeadlineExceededError, ClientClosedError, type IOptions } from 'etcd3'
import { DrError } from '../../kernel/errors.js'
import { PositiveInt } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { StreamName } from '../../kernel/state-store-input.js'

/**
 * How to reach etcd, shared by every etcd factory: the endpoints, the key prefix under which drkit keeps its
 * keys, how long one call may wait for etcd, and extra options for the `etcd3` client (TLS, auth).
 *
 * @public
 */
export interface EtcdConnectionOptions {
  /** One endpoint or several, with their scheme: `http://10.0.0.1:2379`. */
  readonly hosts: string | readonly string[]
  /**
   * Every key drkit writes starts with `<prefix>/` (default `drkit`). Two drkit installations sharing one etcd
   * cluster need different prefixes; coordinators of the same installation need the same one.
   */
  readonly prefix?: string
  /**
   * How long one etcd call may take, connecting included, before it fails with `E_UNAVAILABLE`
   * (default 10 s).
   */
  readonly dialTimeoutMs?: number
  /**
   * Extra `etcd3` client options: `credentials` for TLS, `auth` for user/password, `grpcOptions`,
   * `faultHandling`. `hosts` and `defaultCallOptions` are drkit's.
   */
  readonly client?: Omit<IOptions, 'hosts' | 'defaultCallOptions' | 'dialTimeout'>
}

const isKeyPrefix = (u: unknown): u is string => StreamName.is(u) && u.length <= 256 && !u.endsWith('/')

/**
 * Codec for the key prefix: 1–256 characters, no control characters, not ending in `/`.
 *
 * @public
 */
export const EtcdKeyPrefix = new t.Type<string, string, unknown>(
  'EtcdKeyPrefix (1-256 characters, no control characters, not ending in "/")',
  isKeyPrefix,
  (u, c) => (isKeyPrefix(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const isHost = (u: unknown): u is string => typeof u === 'string' && /^https?:\/\/[^\s/]+\/?$/.test(u)
const EtcdHost = new t.Type<string, string, unknown>(
  'EtcdHost (an URL such as http://127.0.0.1:2379)',
  isHost,
  (u, c) => (isHost(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)
const EtcdHosts = new t.Type<string | readonly string[], unknown, unknown>(
  'EtcdHosts (an endpoint URL or a non-empty list of them)',
  (u): u is string | readonly string[] => isHost(u) || (Array.isArray(u) && u.length > 0 && u.every(isHost)),
  (u, c) => {
    if (isHost(u)) return t.success(u)
    if (Array.isArray(u) && u.length === 0) return t.failure(u, c, 'at least one endpoint')
    return t.readonlyArray(EtcdHost).validate(u, c)
  },
  t.identity,
)

/**
 * Codec for {@link EtcdConnectionOptions}; each etcd factory extends it with its own fields.
 *
 * @public
 */
export const EtcdConnectionOptionsCodec = t.intersection([
  t.type({ hosts: EtcdHosts }),
  t.partial({
    prefix: EtcdKeyPrefix,
    dialTimeoutMs: PositiveInt,
    client: t.UnknownRecord,
  }),
])

/** True for the failures that mean "etcd could not be reached in time" rather than "etcd refused". */
function isUnavailable(thrown: unknown): boolean {
  if (!(thrown instanceof Error)) return false
  // cockatiel's BrokenCircuitError (the etcd3 client's circuit breaker is open) carries this flag.
  const brokenCircuit = (thrown as { readonly isBrokenCircuitError?: unknown }).isBrokenCircuitError === true
  return brokenCircuit || isRecoverableError(thrown) || thrown instanceof GRPCDeadlineExceededError
}

/** The default key prefix. */
export const DEFAULT_PREFIX = 'drkit'
const DEFAULT_DIAL_TIMEOUT_MS = 10_000

/**
 * One `etcd3` client shared by the etcd state store and lease manager that were made together, with the error
 * mapping every etcd call goes through. Reference-counted: the client closes when its last user releases it.
 *
 * @public
 */
export class EtcdConnection {
  /** The `etcd3` client. */
  readonly client: Etcd3
  /** The key prefix, without a trailing `/`. */
  readonly prefix: string
  /** The deadline of one call, in milliseconds. */
  readonly callTimeoutMs: number
  #users = 0
  #closed = false

  /** Decodes `options` (rejecting bad ones with `E_INVALID_INPUT`) and creates the client; nothing is sent yet. */
  constructor(options: EtcdConnectionOptions, what = 'etcd options') {
    decode(EtcdConnectionOptionsCodec, options, what)
    this.prefix = options.prefix ?? DEFAULT_PREFIX
    this.callTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
    const timeout = this.callTimeoutMs
    const extra = options.client ?? {}
    this.client = new Etcd3({
      ...extra,
      hosts: typeof options.hosts === 'string' ? options.hosts : [...options.hosts],
      grpcOptions: { 'grpc.max_receive_message_length': -1, ...(extra.grpcOptions ?? {}) },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    })
  }

  /** True once the last user released the connection. */
  get closed(): boolean {
    return this.#closed
  }

  /** Registers one more user; each must call {@link EtcdConnection.release} once. */
  retain(): this {
    this.#users++
    return this
  }

  /** Drops one user; the last one closes the client. */
  release(): void {
    this.#users = Math.max(0, this.#users - 1)
    if (this.#users === 0 && !this.#closed) {
      this.#closed = true
      this.client.close()
    }
  }

  /**
   * Turns anything an etcd call threw into a DrError naming the adapter and the operation: a DrError passes
   * through, a call cut short by close becomes `E_CLOSED`, an unreachable or slow cluster `E_UNAVAILABLE`, the
   * rest `E_ADAPTER`; the original is kept as `cause`.
   */
  failure(component: string, operation: string, thrown: unknown): DrError {
    if (thrown instanceof DrError) return thrown
    const message = thrown instanceof Error ? thrown.message : String(thrown)
    const details = { adapter: 'etcd', component, operation }
    if (this.#closed || thrown instanceof ClientClosedError) {
      return new DrError('E_CLOSED', `etcd ${component} is closed (${operation})`, details, { cause: thrown })
    }
    if (isUnavailable(thrown)) {
      return new DrError('E_UNAVAILABLE', `etcd ${component}.${operation}: etcd is unreachable or too slow: ${message}`, details, { cause: thrown })
    }
    return new DrError('E_ADAPTER', `etcd ${component}.${operation} failed: ${message}`, details, { cause: thrown })
  }

  /** Runs one etcd call, mapping its failure with {@link EtcdConnection.failure}. */
  async call<R>(component: string, operation: string, run: () => Promise<R>): Promise<R> {
    try {
      return await run()
    } catch (error) {
      throw this.failure(component, operation, error)
    }
  }
}
