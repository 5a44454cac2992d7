import { randomUUID } from 'node:crypto'
import * as t from 'io-ts'
import type { IKeyValue } from 'etcd3'
import { DrError } from '../../kernel/errors.js'
import { PositiveInt, implementing } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { JournalRecord, NewRecord, StateSnapshot, StateStore } from '../../kernel/state-store.js'
import {
  decodeAppendInput,
  decodeReadInput,
  decodeSnapshotInput,
  decodeStreamName,
  decodeStreamPrefix,
  JournalSubscribers,
  storeClosed,
  versionConflict,
} from '../../kernel/state-store-input.js'
import { EtcdConnection, EtcdConnectionOptionsCodec, type EtcdConnectionOptions } from './etcd-connection.js'
import { EtcdKeys, prefixEnd } from './etcd-keys.js'
import { AppendPipeline, PER_APPEND_OVERHEAD, type PendingAppend } from './etcd-append-pipeline.js'
import { JournalWatch } from './etcd-journal-watch.js'
import { JournalFence } from './etcd-journal-fence.js'
import { batchRecords, decodeBatch, decodeSnapshot, encodeBatch, encodeSnapshot } from './etcd-journal-codec.js'

/**
 * Options of {@link etcdStateStore}: where etcd is (see {@link EtcdConnectionOptions}), the request size etcd
 * accepts, and the clock that stamps records.
 *
 * @public
 */
export interface EtcdStateStoreOptions extends EtcdConnectionOptions {
  /**
   * The cluster's `--max-request-bytes` (default 1.5 MiB, etcd's default). An append or snapshot that cannot fit
   * in one request is refused with `E_INVALID_INPUT`, having written nothing.
   */
  readonly maxRequestBytes?: number
  /** Stamps the `at` of appended records (default: the system clock). */
  readonly clock?: Clock
  /**
   * Called when an append resolves before the watch delivered it to this store's subscribers (the watch lagged by
   * more than `dialTimeoutMs`), so the promise that subscribers see an append before it resolves was not kept
   * this time. Default: a process warning (`process.emitWarning`, type `DrkitEtcdWatchLag`).
   */
  readonly onWatchLag?: (lag: EtcdWatchLag) => void
}

/**
 * An append that resolved before the watch had delivered it: the stream, the revision that committed it, the
 * revision the watch had delivered up to, and how long the append waited for it.
 *
 * @public
 */
export interface EtcdWatchLag {
  readonly stream: string
  readonly revision: number
  readonly delivered: number
  readonly waitedMs: number
}

const EtcdStateStoreOptionsCodec = t.intersection(
  [EtcdConnectionOptionsCodec, t.partial({ maxRequestBytes: PositiveInt, clock: implementing<Clock>('Clock', ['now']), onWatchLag: t.Function })],
  'EtcdStateStoreOptions',
)

function warnWatchLag(lag: EtcdWatchLag): void {
  process.emitWarning(
    `etcd state store: an append to "${lag.stream}" (revision ${lag.revision}) resolved before the journal watch delivered it (delivered up to ${lag.delivered} after ${lag.waitedMs} ms)`,
    'DrkitEtcdWatchLag',
  )
}

const DEFAULT_MAX_REQUEST_BYTES = 1_572_864
const PAGE = 1_000
const SNAPSHOT_ATTEMPTS = 20

/**
 * A `StateStore` on etcd, for coordinators that run on more than one machine. Each append is one etcd
 * transaction with a compare-and-swap on the stream's version key (so exactly one of two racing writers wins,
 * the other gets `E_CONFLICT` and nothing is written); the records of an append are one key, so an append of
 * any number of records is one write; reads are range reads of the current keys, never of old revisions, so
 * etcd compaction never breaks a replay; subscribers are fed by an etcd watch, in commit order, and see every
 * coordinator's appends. Once bound to a lease with {@link EtcdStateStore.fence}, every write also checks in etcd
 * that the lease still holds its scope, so a deposed coordinator cannot write. Versions are dense per-stream
 * counters (the `StateStore` contract), not etcd revisions: a revision counts every write to the cluster, so it
 * cannot name the version a writer expects next; each record carries its commit revision as `revision`. Etcd
 * failures are reported as `E_UNAVAILABLE` (unreachable, too slow) or `E_ADAPTER`, with the etcd error as `cause`.
 * Needs etcd 3.3 or later (nested transactions).
 *
 * @public
 */
export class EtcdStateStore implements StateStore {
  /** Always `etcd`. */
  readonly kind = 'etcd'
  readonly #connection: EtcdConnection
  readonly #keys: EtcdKeys
  readonly #clock: Clock
  readonly #subscribers = new JournalSubscribers()
  readonly #watch: JournalWatch
  readonly #pipeline: AppendPipeline
  readonly #onClose: () => Promise<void>
  readonly #onWatchLag: (lag: EtcdWatchLag) => void
  #fence: JournalFence | undefined
  #closed = false

  /**
   * Prefer {@link etcdStateStore}. `connection` is shared with other etcd components when given (the store then
   * releases its use of it on close), created from `options` otherwise; `onClose` runs once when the store closes.
   */
  constructor(options: EtcdStateStoreOptions, shared?: { readonly connection: EtcdConnection; readonly onClose?: () => Promise<void> }) {
    decode(EtcdStateStoreOptionsCodec, options, 'etcdStateStore options')
    this.#connection = (shared?.connection ?? new EtcdConnection(options, 'etcdStateStore options')).retain()
    this.#onClose = shared?.onClose ?? (async () => undefined)
    this.#keys = new EtcdKeys(this.#connection.prefix)
    this.#clock = options.clock ?? systemClock
    this.#onWatchLag = options.onWatchLag ?? warnWatchLag
    this.#watch = new JournalWatch(this.#connection, this.#keys, this.#subscribers)
    this.#pipeline = new AppendPipeline(this.#connection, options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES)
  }

  /** The key prefix this store writes under. */
  get prefix(): string {
    return this.#connection.prefix
  }

  /** Appends records to a stream at an expected version (optimistic concurrency). Rejects with `E_INVALID_INPUT` an append too large for one etcd request. */
  async append(stream: string, expectedVersion: number, records: readonly NewRecord[]): Promise<number> {
    this.#checkOpen('append')
    const input = decodeAppendInput(stream, expectedVersion, records)
    const newVersion = input.expectedVersion + input.records.length
    if (!Number.isSafeInteger(newVersion)) {
      throw new DrError('E_INVALID_INPUT', `etcd state store: stream "${input.stream}" would pass the largest version`, { stream: input.stream })
    }
    const id = randomUUID()
    const versionKey = this.#keys.version(input.stream)
    const batchKey = this.#keys.batch(input.stream, newVersion)
    const value = Buffer.from(encodeBatch(id, this.#clock.now(), input.records))
    const fence = this.#fence
    const bytes = value.length + versionKey.length * 2 + batchKey.length * 2 + 24 + PER_APPEND_OVERHEAD + (fence?.overhead ?? 0)
    if (bytes > this.#pipeline.maxAppendBytes) {
      throw new DrError(
        'E_INVALID_INPUT',
        `invalid StateStore.append input: ${bytes} bytes do not fit in one etcd request (at most ${this.#pipeline.maxAppendBytes}); append fewer or smaller records`,
        { what: 'StateStore.append input', stream: input.stream, bytes, limit: this.#pipeline.maxAppendBytes },
      )
    }
    // Subscribers must see every append this store makes: none is sent before the watch knows where it starts.
    if (this.#watch.active) await this.#connection.call('state store', 'append', () => this.#watch.ready())
    const pending: PendingAppend = { stream: input.stream, expectedVersion: input.expectedVersion, newVersion, id, versionKey, batchKey, value, bytes, fence }
    const outcome = await this.#connection.call('state store', 'append', () => this.#pipeline.submit(pending))
    if (outcome.kind === 'fenced') throw outcome.refusal
    if (outcome.kind === 'conflict') throw versionConflict(this.kind, input.stream, input.expectedVersion, outcome.actualVersion)
    if (this.#watch.active && this.#subscribers.wants(input.stream)) await this.#awaitDelivery(input.stream, outcome.revision)
    return newVersion
  }

  async #awaitDelivery(stream: string, revision: number): Promise<void> {
    const since = this.#clock.now()
    if (await this.#watch.reached(revision, this.#connection.callTimeoutMs)) return
    this.#onWatchLag({ stream, revision, delivered: this.#watch.delivered, waitedMs: this.#clock.now() - since })
  }

  /**
   * See `StateStore.fence`. Binds every later append and snapshot save to the etcd lease behind `token`: the
   * leadership key of `token.scope` under this store's prefix, created by the etcd lease manager on the same prefix
   * (as {@link etcdCoordination} pairs them), must still have `token.value` as its create revision, or etcd refuses
   * the write and it rejects with `E_FENCED`. Rejects at once with `E_FENCED` when the token does not hold the key now.
   */
  async fence(token: FenceToken): Promise<void> {
    this.#checkOpen('fence')
    this.#fence = await JournalFence.bind(this.#connection, this.#keys, token)
  }

  /** Reads a stream from a version. A gap or a damaged entry in the stream is reported as `E_CORRUPT`. */
  async read(stream: string, afterVersion?: number): Promise<readonly JournalRecord[]> {
    this.#checkOpen('read')
    const input = decodeReadInput(stream, afterVersion)
    const out: JournalRecord[] = []
    const end = this.#keys.batchesEnd(input.stream)
    let start = this.#keys.batch(input.stream, input.afterVersion + 1)
    for (;;) {
      const response = await this.#connection.call('state store', 'read', () => this.#connection.client.kv.range({ key: start, range_end: end, limit: PAGE }))
      for (const kv of response.kvs) {
        const parsed = this.#keys.parseBatch(kv.key)
        if (parsed === undefined) throw this.#gap(input.stream, kv, 'an unexpected key')
        const records = batchRecords(input.stream, parsed.lastVersion, decodeBatch(kv.key, kv.value), Number(kv.mod_revision), input.afterVersion)
        const expectedFirst = (out[out.length - 1]?.version ?? input.afterVersion) + 1
        if (records[0]?.version !== expectedFirst) {
          throw this.#gap(input.stream, kv, `version ${expectedFirst} missing`)
        }
        out.push(...records)
      }
      const last = response.kvs[response.kvs.length - 1]
      if (!response.more || last === undefined) break
      start = Buffer.concat([last.key, Buffer.from([0])])
    }
    return out
  }

  /** The current version of a stream. */
  async version(stream: string): Promise<number> {
    this.#checkOpen('version')
    const key = this.#keys.version(decodeStreamName(stream))
    const response = await this.#connection.call('state store', 'version', () => this.#connection.client.kv.range({ key }))
    const kv = response.kvs[0]
    if (kv === undefined) return 0
    const version = Number(kv.value.toString('utf8'))
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new DrError('E_CORRUPT', `etcd state store: version key "${key.toString('utf8')}" holds "${kv.value.toString('utf8')}"`, { adapter: 'etcd', stream })
    }
    return version
  }

  /** The names of the streams under a prefix. */
  async listStreams(prefix: string): Promise<readonly string[]> {
    this.#checkOpen('listStreams')
    const wanted = decodeStreamPrefix(prefix)
    const from = this.#keys.versionsFrom(wanted)
    const end = prefixEnd(from)
    const names: string[] = []
    let start = from
    for (;;) {
      const response = await this.#connection.call('state store', 'listStreams', () =>
        this.#connection.client.kv.range({ key: start, range_end: end, limit: PAGE, keys_only: true }),
      )
      for (const kv of response.kvs) names.push(this.#keys.streamOfVersionKey(kv.key))
      const last = response.kvs[response.kvs.length - 1]
      if (!response.more || last === undefined) break
      start = Buffer.concat([last.key, Buffer.from([0])])
    }
    return names.filter((name) => name.startsWith(wanted)).sort()
  }

  /**
   * Calls a listener for every record appended to a stream after commit. Records appended by other coordinators on the same etcd are delivered too,
   * in commit order, from the moment the store has read the current etcd revision (an append made by this store
   * after `subscribe` returned is always delivered, before that append resolves).
   */
  subscribe(prefix: string, listener: (record: JournalRecord) => void): () => void {
    this.#checkOpen('subscribe')
    const unsubscribe = this.#subscribers.add(decodeStreamPrefix(prefix), listener)
    this.#watch.start()
    return unsubscribe
  }

  /** Saves a state snapshot of a stream at a version. A snapshot older than the one already saved is ignored. */
  async saveSnapshot(snapshot: StateSnapshot): Promise<void> {
    this.#checkOpen('saveSnapshot')
    const input = decodeSnapshotInput(snapshot)
    const key = this.#keys.snapshot(input.stream)
    const value = Buffer.from(encodeSnapshot(input))
    if (value.length + key.length + PER_APPEND_OVERHEAD + (this.#fence?.overhead ?? 0) > this.#pipeline.maxAppendBytes) {
      throw new DrError(
        'E_INVALID_INPUT',
        `invalid StateStore.saveSnapshot input: ${value.length} bytes do not fit in one etcd request (at most ${this.#pipeline.maxAppendBytes})`,
        { what: 'StateStore.saveSnapshot input', stream: input.stream, bytes: value.length },
      )
    }
    const fence = this.#fence
    for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
      const current = await this.#connection.call('state store', 'saveSnapshot', () => this.#connection.client.kv.range({ key }))
      const kv = current.kvs[0]
      if (kv !== undefined && decodeSnapshot(input.stream, key, kv.value).version > input.version) return
      const unchanged = { key, target: 'Mod' as const, result: 'Equal' as const, mod_revision: kv === undefined ? 0 : kv.mod_revision }
      const response = await this.#connection.call('state store', 'saveSnapshot', () =>
        this.#connection.client.kv.txn({
          compare: fence === undefined ? [unchanged] : [unchanged, fence.compare()],
          success: [{ request_put: { key, value } }],
          failure: fence === undefined ? [] : [fence.read()],
        }),
      )
      if (response.succeeded) return
      const refusal = fence?.refusal(response.responses[0]?.response_range?.kvs[0])
      if (refusal !== undefined) throw refusal
    }
    throw new DrError('E_CONFLICT', `etcd state store: snapshot of "${input.stream}" kept changing under ${SNAPSHOT_ATTEMPTS} attempts`, { stream: input.stream })
  }

  /** Loads the newest state snapshot of a stream. */
  async loadSnapshot(stream: string): Promise<StateSnapshot | undefined> {
    this.#checkOpen('loadSnapshot')
    const name = decodeStreamName(stream)
    const key = this.#keys.snapshot(name)
    const response = await this.#connection.call('state store', 'loadSnapshot', () => this.#connection.client.kv.range({ key }))
    const kv = response.kvs[0]
    return kv === undefined ? undefined : decodeSnapshot(name, key, kv.value)
  }

  /** Closes the store. Closing twice is harmless; keys stay in etcd. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#subscribers.clear()
    this.#watch.close()
    try {
      await this.#onClose()
    } finally {
      this.#connection.release()
    }
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw storeClosed(this.kind, operation)
  }

  #gap(stream: string, kv: IKeyValue, rule: string): DrError {
    return new DrError('E_CORRUPT', `etcd state store: stream "${stream}" is damaged at key "${kv.key.toString('utf8')}" (${rule})`, {
      adapter: 'etcd',
      stream,
    })
  }
}

/**
 * Creates an {@link EtcdStateStore}. Nothing is sent to etcd until the first call, so the store can be handed to
 * `createDrSystem` as it is. Throws `E_INVALID_INPUT` on bad options.
 *
 * @public
 */
export function etcdStateStore(options: EtcdStateStoreOptions): EtcdStateStore {
  return new EtcdStateStore(options)
}
