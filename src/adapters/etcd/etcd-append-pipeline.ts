import type { IKeyValue, ITxnRequest, ITxnResponse } from 'etcd3'
import type { EtcdConnection } from './etcd-connection.js'
import { decodeBatch } from './etcd-journal-codec.js'
import type { JournalFence } from './etcd-journal-fence.js'

/** One append waiting for its turn: the keys and values it writes and the version it expects. */
export interface PendingAppend {
  readonly stream: string
  readonly expectedVersion: number
  readonly newVersion: number
  readonly id: string
  readonly versionKey: Buffer
  readonly batchKey: Buffer
  readonly value: Buffer
  /** Bytes this append adds to a request (keys, values and per-operation overhead). */
  readonly bytes: number
  /** The lease the append is bound to, if the store was fenced. */
  readonly fence: JournalFence | undefined
}

/**
 * How an append ended: written at `revision`; refused because the stream was at `actualVersion`; or refused
 * because its fence token no longer holds its lease (`refusal` says why).
 */
export type AppendOutcome =
  | { readonly kind: 'written'; readonly revision: number }
  | { readonly kind: 'conflict'; readonly actualVersion: number }
  | { readonly kind: 'fenced'; readonly refusal: Error }

interface Queued {
  readonly append: PendingAppend
  readonly resolve: (outcome: AppendOutcome) => void
  readonly reject: (error: unknown) => void
}

/** Outer operations per transaction: below etcd's default `--max-txn-ops` of 128. */
const MAX_GROUP = 100
/** Room left in a request for the transaction's own framing. */
const REQUEST_OVERHEAD = 4_096
/** Framing bytes counted per append (compare, two puts, two ranges). */
export const PER_APPEND_OVERHEAD = 256

function compareFor(append: PendingAppend): ITxnRequest {
  const compare =
    append.expectedVersion === 0
      ? [{ key: append.versionKey, target: 'Create' as const, result: 'Equal' as const, create_revision: 0 }]
      : [{ key: append.versionKey, target: 'Value' as const, result: 'Equal' as const, value: Buffer.from(String(append.expectedVersion)) }]
  const { fence } = append
  return {
    compare: fence === undefined ? compare : [...compare, fence.compare()],
    success: [
      { request_put: { key: append.versionKey, value: Buffer.from(String(append.newVersion)) } },
      { request_put: { key: append.batchKey, value: append.value } },
    ],
    failure: [{ request_range: { key: append.versionKey } }, { request_range: { key: append.batchKey } }, ...(fence === undefined ? [] : [fence.read()])],
  }
}

function firstKv(response: ITxnResponse, index: number): IKeyValue | undefined {
  return response.responses[index]?.response_range?.kvs[0]
}

/**
 * Sends appends to etcd in the order they were made, one transaction at a time, grouping the appends that queue
 * up meanwhile into one transaction (a nested transaction per append, each with its own compare-and-swap on the
 * stream's version and, for a fenced store, on the lease its token came from). Sending in order is what lets subscribers see this process's appends in the order they were
 * made; grouping is what keeps concurrent writers fast. Two appends to the same stream never share a group.
 */
export class AppendPipeline {
  readonly #connection: EtcdConnection
  readonly #maxRequestBytes: number
  readonly #queue: Queued[] = []
  #running = false

  constructor(connection: EtcdConnection, maxRequestBytes: number) {
    this.#connection = connection
    this.#maxRequestBytes = maxRequestBytes
  }

  /** The largest append (in {@link PendingAppend.bytes}) one request can carry. */
  get maxAppendBytes(): number {
    return this.#maxRequestBytes - REQUEST_OVERHEAD
  }

  /** Queues `append`; resolves with its outcome, rejects with what the etcd call threw. */
  submit(append: PendingAppend): Promise<AppendOutcome> {
    return new Promise<AppendOutcome>((resolve, reject) => {
      this.#queue.push({ append, resolve, reject })
      if (!this.#running) void this.#drain()
    })
  }

  async #drain(): Promise<void> {
    this.#running = true
    try {
      while (this.#queue.length > 0) await this.#send(this.#takeGroup())
    } finally {
      this.#running = false
    }
  }

  #takeGroup(): Queued[] {
    const group: Queued[] = []
    const streams = new Set<string>()
    let bytes = 0
    for (const queued of this.#queue) {
      const { stream, bytes: size } = queued.append
      if (group.length >= MAX_GROUP || streams.has(stream) || (group.length > 0 && bytes + size > this.maxAppendBytes)) break
      group.push(queued)
      streams.add(stream)
      bytes += size
    }
    this.#queue.splice(0, group.length)
    return group
  }

  async #send(group: readonly Queued[]): Promise<void> {
    let response: ITxnResponse
    try {
      response = await this.#connection.client.kv.txn({ success: group.map(({ append }) => ({ request_txn: compareFor(append) })) })
    } catch (error) {
      for (const queued of group) queued.reject(error)
      return
    }
    const revision = Number(response.header.revision)
    group.forEach((queued, index) => {
      try {
        queued.resolve(this.#outcome(queued.append, response.responses[index]?.response_txn, revision))
      } catch (error) {
        queued.reject(error)
      }
    })
  }

  #outcome(append: PendingAppend, inner: ITxnResponse | undefined, revision: number): AppendOutcome {
    if (inner?.succeeded === true) return { kind: 'written', revision }
    if (inner === undefined) return { kind: 'conflict', actualVersion: Number.NaN }
    // A retried request whose first attempt was applied fails its compare: our own append is then already there.
    const written = firstKv(inner, 1)
    if (written !== undefined && decodeBatch(append.batchKey, written.value).id === append.id) {
      return { kind: 'written', revision: Number(written.mod_revision) }
    }
    // A lost lease wins over a version conflict: a deposed writer must stop, not catch up and try again.
    const refusal = append.fence?.refusal(firstKv(inner, 2))
    if (refusal !== undefined) return { kind: 'fenced', refusal }
    const current = firstKv(inner, 0)
    return { kind: 'conflict', actualVersion: current === undefined ? 0 : Number(current.value.toString('utf8')) }
  }
}
