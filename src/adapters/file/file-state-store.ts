import path from 'node:path'
import * as t from 'io-ts'
import { adapterError } from '../../kernel/errors.js'
import { NonNegativeInt, implementing } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import type { Clock } from '../../kernel/clock.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type { JournalRecord, NewRecord, StateSnapshot, StateStore } from '../../kernel/state-store.js'
import {
  JournalSubscribers,
  decodeAppendInput,
  decodeReadInput,
  decodeSnapshotInput,
  decodeStreamName,
  decodeStreamPrefix,
  storeClosed,
  versionConflict,
} from '../../kernel/state-store-input.js'
import type { FsyncMode } from './group-commit.js'
import { decodeFrameRecords, encodeFrame } from './journal-format.js'
import { JournalReader } from './journal-reader.js'
import { openJournal, type OpenJournal } from './open-journal.js'

/**
 * How to open a file journal. `dir` holds the journal (`journal.log`), its lock (`journal.lock`) and saved
 * snapshots (`snapshots/`) and is created when missing; `fsync` is the {@link FsyncMode} (default `group`);
 * `cacheBytes` is how much of the end of the journal is kept in memory to serve reads without touching the
 * file (default 32 MiB, 0 for none); `clock` stamps the `at` of appended records (default: `Date.now`).
 *
 * @public
 */
export interface FileStateStoreOptions {
  readonly dir: string
  readonly fsync?: FsyncMode
  readonly cacheBytes?: number
  readonly clock?: Clock
}

/**
 * What a file journal has done since it was opened, for tests, benchmarks and monitoring.
 *
 * @public
 */
export interface FileStateStoreStats {
  /** Appends accepted. */
  readonly appends: number
  /** Write batches (each one write + at most one fsync, shared by every append in it). */
  readonly writes: number
  /** fdatasync calls made for appends. */
  readonly fsyncs: number
  /** Bytes appended. */
  readonly bytesWritten: number
  /** Frames (one per append call) in the journal. */
  readonly frames: number
  /** Streams with at least one record. */
  readonly streams: number
  /** Bytes of torn tail cut off when the journal was opened. */
  readonly truncatedBytes: number
}

const isDirectoryPath = (u: unknown): u is string => typeof u === 'string' && u.length > 0
const DirectoryPath = new t.Type<string, string, unknown>(
  'DirectoryPath (a non-empty path)',
  isDirectoryPath,
  (u, c) => (isDirectoryPath(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const OptionsCodec = t.intersection([
  t.type({ dir: DirectoryPath }),
  t.partial({
    fsync: t.keyof({ group: null, always: null, never: null }),
    cacheBytes: NonNegativeInt,
    clock: implementing<Clock>('Clock', ['now']),
  }),
])

/** Default of {@link FileStateStoreOptions.cacheBytes}. */
const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024

const ignore = (): void => undefined

/**
 * The embedded default {@link StateStore}: one append-only journal file per directory, with a checksummed
 * frame per append (so a multi-record append is all or nothing), group commit, torn-tail recovery on open and
 * snapshots in separate files. One process at a time may open a directory (`E_CONFLICT` otherwise).
 *
 * The store opens lazily, on its first call, or when {@link FileStateStore.open} is awaited; opening rejects
 * with `E_CORRUPT` (naming the file and byte offset) when the journal is damaged anywhere but at its very end.
 * Memory holds an index of about 20 bytes per append plus the last `cacheBytes` of the journal; records are
 * decoded, and checked against their checksum, when asked for — from that cache, or else with positioned
 * synchronous reads of bytes already durable in the file.
 *
 * @public
 */
export class FileStateStore implements StateStore {
  /** Always `file`. */
  readonly kind = 'file'
  /** The directory of the journal (absolute). */
  readonly dir: string
  readonly #mode: FsyncMode
  readonly #cacheBytes: number
  readonly #now: () => number
  readonly #subscribers = new JournalSubscribers()
  readonly #fences = new FenceGuard('file state store')
  #opening: Promise<OpenJournal> | undefined
  #journal: OpenJournal | undefined
  #closing: Promise<void> | undefined
  #appends = 0
  readonly #reader = new JournalReader()

  /** Checks `options` (`E_INVALID_INPUT`); nothing is opened until the first call or {@link FileStateStore.open}. */
  constructor(options: FileStateStoreOptions) {
    const valid = decode(OptionsCodec, options, 'fileStateStore options')
    this.dir = path.resolve(valid.dir)
    this.#mode = valid.fsync ?? 'group'
    this.#cacheBytes = valid.cacheBytes ?? DEFAULT_CACHE_BYTES
    const clock = valid.clock
    this.#now = clock === undefined ? Date.now : () => clock.now()
  }

  /**
   * Opens the journal now: takes the directory lock (`E_CONFLICT` when another process holds it), indexes the
   * journal, cuts off a torn tail (`E_CORRUPT` on damage before the end). Resolves at once when already open.
   */
  async open(): Promise<void> {
    await this.#ready('open')
  }

  /** Counters since the journal was opened (all zero before). */
  stats(): FileStateStoreStats {
    const journal = this.#journal
    const log = journal?.log.stats
    return {
      appends: this.#appends,
      writes: log?.writes ?? 0,
      fsyncs: log?.fsyncs ?? 0,
      bytesWritten: log?.bytes ?? 0,
      frames: journal?.index.frames.count ?? 0,
      streams: journal?.index.streamCount ?? 0,
      truncatedBytes: journal?.truncatedBytes ?? 0,
    }
  }

  /** See {@link StateStore.append}. */
  async append(stream: string, expectedVersion: number, records: readonly NewRecord[]): Promise<number> {
    this.#checkOpen('append')
    const input = decodeAppendInput(stream, expectedVersion, records)
    const journal = await this.#ready('append')
    const failure = journal.log.failure
    if (failure !== undefined) throw failure
    const current = journal.index.get(input.stream)?.reserved ?? 0
    if (current !== input.expectedVersion) throw versionConflict(this.kind, input.stream, input.expectedVersion, current)
    const json = JSON.stringify(input.records.map((record) => ({ type: record.type, data: record.data })))
    const first = current + 1
    const count = input.records.length
    const at = this.#now()
    const frame = encodeFrame(input.stream, first, at, count, json)
    const entry = journal.index.entry(input.stream)
    entry.reserved = current + count
    this.#appends++
    const durable = journal.log.submit(frame, (offset) => {
      journal.index.addFrame(entry, offset, frame.length, first, count)
      journal.recent.add(offset, frame)
      if (!this.#subscribers.wants(input.stream)) return
      for (const record of decodeFrameRecords(json, { stream: input.stream, firstVersion: first, count, at }, 0) ?? []) {
        this.#subscribers.publish(record)
      }
    })
    const settled = durable.then(ignore, ignore)
    entry.inFlight = settled
    void settled.then(() => {
      if (entry.inFlight === settled) entry.inFlight = undefined
    })
    await durable
    return current + count
  }

  /** See {@link StateStore.read}. Waits for appends to the stream that are still being made durable. */
  async read(stream: string, afterVersion?: number): Promise<readonly JournalRecord[]> {
    this.#checkOpen('read')
    const input = decodeReadInput(stream, afterVersion)
    const journal = await this.#ready('read')
    const entry = journal.index.get(input.stream)
    if (entry === undefined) return []
    if (entry.inFlight !== undefined) await entry.inFlight
    this.#checkOpen('read')
    if (input.afterVersion >= entry.durable) return []
    try {
      return this.#reader.records(journal, entry, input.afterVersion)
    } catch (error) {
      throw adapterError('file', 'read', error)
    }
  }

  /** See {@link StateStore.version}. Waits for appends to the stream that are still being made durable. */
  async version(stream: string): Promise<number> {
    this.#checkOpen('version')
    const name = decodeStreamName(stream)
    const journal = await this.#ready('version')
    const entry = journal.index.get(name)
    if (entry === undefined) return 0
    if (entry.inFlight !== undefined) await entry.inFlight
    return entry.durable
  }

  /** See {@link StateStore.listStreams}. Waits for appends still being made durable. */
  async listStreams(prefix: string): Promise<readonly string[]> {
    this.#checkOpen('listStreams')
    const wanted = decodeStreamPrefix(prefix)
    const journal = await this.#ready('listStreams')
    await journal.log.settled()
    return journal.index.names(wanted)
  }

  /** See {@link StateStore.subscribe}. Listeners are called once the record is durable. */
  subscribe(prefix: string, listener: (record: JournalRecord) => void): () => void {
    this.#checkOpen('subscribe')
    return this.#subscribers.add(decodeStreamPrefix(prefix), listener)
  }

  /** See {@link StateStore.saveSnapshot}. A snapshot older than the one already saved is ignored. */
  async saveSnapshot(snapshot: StateSnapshot): Promise<void> {
    this.#checkOpen('saveSnapshot')
    const input = decodeSnapshotInput(snapshot)
    const journal = await this.#ready('saveSnapshot')
    try {
      await journal.snapshots.save(input)
    } catch (error) {
      throw adapterError('file', 'saveSnapshot', error)
    }
  }

  /** See {@link StateStore.loadSnapshot}. Rejects with `E_CORRUPT` when the snapshot file is damaged. */
  async loadSnapshot(stream: string): Promise<StateSnapshot | undefined> {
    this.#checkOpen('loadSnapshot')
    const name = decodeStreamName(stream)
    const journal = await this.#ready('loadSnapshot')
    try {
      return await journal.snapshots.load(name)
    } catch (error) {
      throw adapterError('file', 'loadSnapshot', error)
    }
  }

  /**
   * See {@link StateStore.fence}. The directory lock lets one process at a time write the journal, so no deposed
   * coordinator shares it: a token lower than one bound before is refused with `E_FENCED`, and writes are not
   * checked. The binding is not persisted.
   */
  async fence(token: FenceToken): Promise<void> {
    this.#checkOpen('fence')
    this.#fences.check(token, 'fence')
  }

  /**
   * See {@link StateStore.close}. Appends already accepted are completed (and their listeners called) first;
   * then the journal is fsynced, closed and its lock removed. Closing twice is harmless.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    const journal = this.#journal ?? (await this.#opening?.catch(() => undefined))
    try {
      if (journal !== undefined) await this.#closeJournal(journal)
    } finally {
      this.#subscribers.clear()
      this.#reader.release()
    }
  }

  async #closeJournal(journal: OpenJournal): Promise<void> {
    try {
      await journal.log.settled()
      await journal.snapshots.settled()
      if (journal.log.failure === undefined) await journal.handle.datasync()
      await journal.handle.close()
    } catch (error) {
      await journal.handle.close().catch(ignore)
      throw adapterError('file', 'close', error)
    } finally {
      await journal.lock.release()
    }
  }

  #checkOpen(operation: string): void {
    if (this.#closing !== undefined) throw storeClosed(this.kind, operation)
  }

  async #ready(operation: string): Promise<OpenJournal> {
    this.#checkOpen(operation)
    if (this.#journal !== undefined) return this.#journal
    this.#opening ??= openJournal(this.dir, this.#mode, this.#cacheBytes).then(
      (journal) => (this.#journal = journal),
      (error: unknown) => {
        this.#opening = undefined
        throw adapterError('file', 'open', error)
      },
    )
    const journal = await this.#opening
    this.#checkOpen(operation)
    return journal
  }
}

/**
 * Creates a {@link FileStateStore} on `options.dir` without opening it: the journal opens on the first call
 * (whose promise then carries any `E_CONFLICT` or `E_CORRUPT` from opening), so the store can be handed to
 * `createDrSystem` as it is. Throws `E_INVALID_INPUT` on bad options.
 *
 * @public
 */
export function fileStateStore(options: FileStateStoreOptions): FileStateStore {
  return new FileStateStore(options)
}

/**
 * Creates a {@link FileStateStore} and opens it before resolving, so a locked or damaged journal is reported
 * here rather than at the first call.
 *
 * @public
 */
export async function openFileStateStore(options: FileStateStoreOptions): Promise<FileStateStore> {
  const store = new FileStateStore(options)
  await store.open()
  return store
}
