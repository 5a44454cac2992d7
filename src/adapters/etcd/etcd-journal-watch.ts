import type { IKeyValue, IWatchResponse, Watcher } from 'etcd3'
import type { JournalSubscribers } from '../../kernel/state-store-input.js'
import type { EtcdConnection } from './etcd-connection.js'
import { prefixEnd, type EtcdKeys } from './etcd-keys.js'
import { batchRecords, decodeBatch } from './etcd-journal-codec.js'

const RETRY_MS = 500
const PAGE = 1_000

interface Waiter {
  readonly revision: number
  readonly resolve: (reached: boolean) => void
}

/**
 * Feeds a store's subscribers from one etcd watch over the whole journal key space, so they see every append —
 * this process's and other coordinators' — after it committed and in commit (revision) order. The watch starts
 * at a revision read before it is created, so nothing committed after {@link JournalWatch.ready} resolves can be
 * missed, however late the watch connects. If etcd cancels the watch (its start revision was compacted away while
 * it was disconnected), the appends made since the last delivered revision are read back by modification
 * revision and delivered before a new watch takes over.
 */
export class JournalWatch {
  readonly #connection: EtcdConnection
  readonly #keys: EtcdKeys
  readonly #subscribers: JournalSubscribers
  #starting: Promise<void> | undefined
  #watcher: Watcher | undefined
  #delivered = 0
  #active = false
  #started = false
  #closed = false
  #retry: NodeJS.Timeout | undefined
  readonly #waiters = new Set<Waiter>()

  constructor(connection: EtcdConnection, keys: EtcdKeys, subscribers: JournalSubscribers) {
    this.#connection = connection
    this.#keys = keys
    this.#subscribers = subscribers
  }

  /** True once a subscriber asked for the watch. */
  get active(): boolean {
    return this.#active
  }

  /** Starts the watch (once), retrying in the background until it has started. */
  start(): void {
    if (this.#closed || this.#active) return
    this.#active = true
    this.#keepStarting()
  }

  #keepStarting(): void {
    this.ready().catch(() => this.#later(() => this.#keepStarting()))
  }

  /**
   * Resolves once the revision the watch starts after is known, so that every append committed from then on is
   * delivered; rejects with the etcd error when reading it failed (the next call, or the background retry, tries
   * again). An append waits for this before it is sent, so that it cannot commit unseen by the watch.
   */
  ready(): Promise<void> {
    if (this.#started || this.#closed) return Promise.resolve()
    this.#starting ??= this.#begin().finally(() => {
      this.#starting = undefined
    })
    return this.#starting
  }

  /**
   * Resolves with true once every append up to `revision` was delivered (or the watch closed), with false when
   * `timeoutMs` passed first.
   */
  reached(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.#closed || this.#delivered >= revision) return Promise.resolve(true)
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs)
      timer.unref()
      const waiter: Waiter = { revision, resolve: (reached) => done(reached) }
      const done = (reached: boolean): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        resolve(reached)
      }
      this.#waiters.add(waiter)
    })
  }

  /** The revision up to which every append was delivered. */
  get delivered(): number {
    return this.#delivered
  }

  /** Stops the watch and releases every waiter. */
  close(): void {
    this.#closed = true
    if (this.#retry !== undefined) clearTimeout(this.#retry)
    const watcher = this.#watcher
    this.#watcher = undefined
    if (watcher !== undefined) void watcher.cancel().catch(() => undefined)
    for (const waiter of [...this.#waiters]) waiter.resolve(true)
  }

  async #begin(): Promise<void> {
    const response = await this.#connection.client.kv.range({ key: this.#keys.journal(), keys_only: true, limit: 1 })
    if (this.#started || this.#closed) return
    this.#started = true
    this.#delivered = Number(response.header.revision)
    this.#watch(this.#delivered + 1)
  }

  #later(run: () => void): void {
    if (this.#closed) return
    this.#retry = setTimeout(run, RETRY_MS)
    this.#retry.unref()
  }

  #watch(fromRevision: number): void {
    if (this.#closed) return
    const journal = this.#keys.journal()
    const watcher = this.#connection.client.watch().inRange({ start: journal, end: prefixEnd(journal) }).startRevision(String(fromRevision)).watcher()
    this.#watcher = watcher
    watcher.on('data', (response: IWatchResponse) => this.#onData(response))
    watcher.on('error', () => {
      if (this.#watcher !== watcher) return
      this.#watcher = undefined
      void watcher.cancel().catch(() => undefined)
      void this.#catchUp()
    })
  }

  #onData(response: IWatchResponse): void {
    if (this.#closed) return
    let top = this.#delivered
    for (const event of response.events) {
      const revision = Number(event.kv.mod_revision)
      if (revision <= this.#delivered) continue
      if (event.type === 'Put') this.#publish(event.kv)
      top = Math.max(top, revision)
    }
    if (response.events.length === 0) top = Math.max(top, Number(response.header.revision))
    this.#advance(top)
  }

  #advance(revision: number): void {
    this.#delivered = Math.max(this.#delivered, revision)
    for (const waiter of [...this.#waiters]) if (waiter.revision <= this.#delivered) waiter.resolve(true)
  }

  #publish(kv: IKeyValue): void {
    const parsed = this.#keys.parseBatch(kv.key)
    if (parsed === undefined || !this.#subscribers.wants(parsed.stream)) return
    let records
    try {
      records = batchRecords(parsed.stream, parsed.lastVersion, decodeBatch(kv.key, kv.value), Number(kv.mod_revision))
    } catch {
      // A value that is not a journal entry cannot be delivered; readers of the stream get E_CORRUPT for it.
      return
    }
    for (const record of records) this.#subscribers.publish(record)
  }

  /** Delivers what was appended since the last delivered revision, then watches again from there. */
  async #catchUp(): Promise<void> {
    if (this.#closed) return
    try {
      const journal = this.#keys.journal()
      const end = prefixEnd(journal)
      const missed: IKeyValue[] = []
      let start = journal
      let pinned: number | undefined
      for (;;) {
        const response = await this.#connection.client.kv.range({
          key: start,
          range_end: end,
          limit: PAGE,
          min_mod_revision: this.#delivered + 1,
          ...(pinned === undefined ? {} : { revision: pinned }),
        })
        pinned ??= Number(response.header.revision)
        missed.push(...response.kvs)
        const last = response.kvs[response.kvs.length - 1]
        if (!response.more || last === undefined) break
        start = Buffer.concat([last.key, Buffer.from([0])])
      }
      missed.sort((a, b) => Number(a.mod_revision) - Number(b.mod_revision) || Buffer.compare(a.key, b.key))
      for (const kv of missed) if (!this.#closed) this.#publish(kv)
      this.#advance(pinned)
      this.#watch(pinned + 1)
    } catch {
      this.#later(() => void this.#catchUp())
    }
  }
}
