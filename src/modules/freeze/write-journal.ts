import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { NewRecord, StateStore } from '../../kernel/state-store.js'
import type { CachedWrite } from './write-cache.js'

const Entry = t.type({ seq: t.number, offset: t.number, at: t.number, data: t.string })
const JournalRecord = t.union([
  t.type({ type: t.literal('journal.writes'), data: t.type({ entries: t.array(Entry) }) }),
  t.type({ type: t.literal('journal.sealed'), data: t.type({ count: t.number, bytes: t.number }) }),
  t.type({ type: t.literal('journal.reset'), data: t.type({}) }),
  t.type({ type: t.literal('journal.removed'), data: t.type({}) }),
])

/** Raw bytes per appended record; keeps each append well inside every store's request limit. */
const CHUNK_BYTES = 384 * 1024

/**
 * What a saved journal holds: how many writes, how many bytes, when the oldest was acknowledged, and the stream.
 *
 * @public
 */
export interface JournalSummary {
  readonly stream: string
  readonly count: number
  readonly bytes: number
  readonly oldestAt: number | null
}

/**
 * A journal as read back: its writes in their original order, and whether it was removed after its replay.
 *
 * @public
 */
export interface LoadedJournal {
  readonly writes: readonly CachedWrite[]
  readonly removed: boolean
}

interface Folded {
  readonly version: number
  readonly writes: CachedWrite[]
  readonly sealed: boolean
  readonly removed: boolean
}

/**
 * The off-volume journal of cached writes (seed 004, F5-2 "temporary files"): one state-store stream per restore
 * (`freeze/journal/<restoreId>`), never on the volume being restored. A journal is written in chunks and then
 * sealed; only a sealed journal counts, and saving again after a crash that left it half-written starts it over
 * (a reset record voids the chunks before it). "Removing" it after the replay appends a removal record: state
 * stores are append-only, and a removed journal is never replayed again.
 *
 * @public
 */
export class WriteJournal {
  readonly #store: StateStore

  constructor(stateStore: StateStore) {
    this.#store = stateStore
  }

  /** The stream of restore `restoreId`'s journal. */
  static streamOf(restoreId: string): string {
    return `freeze/journal/${restoreId}`
  }

  /**
   * Saves `writes` (oldest first) as the sealed journal of `restoreId`; a journal sealed already is kept as it is.
   * No writes and no journal yet: nothing is written (there is nothing to replay, and `load` finds no journal).
   */
  async save(restoreId: string, writes: readonly CachedWrite[]): Promise<JournalSummary> {
    const stream = WriteJournal.streamOf(restoreId)
    let folded = await this.#fold(stream)
    if (folded.sealed) return summary(stream, folded.writes)
    if (folded.version === 0 && writes.length === 0) return summary(stream, writes)
    if (folded.version > 0) {
      await this.#store.append(stream, folded.version, [{ type: 'journal.reset', data: {} }])
      folded = await this.#fold(stream)
    }
    let version = folded.version
    let chunk: t.TypeOf<typeof Entry>[] = []
    let chunkBytes = 0
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return
      version = await this.#store.append(stream, version, [{ type: 'journal.writes', data: { entries: chunk } }])
      chunk = []
      chunkBytes = 0
    }
    for (const write of writes) {
      chunk.push({ seq: write.seq, offset: write.offset, at: write.at, data: Buffer.from(write.data).toString('base64') })
      chunkBytes += write.data.length
      if (chunkBytes >= CHUNK_BYTES) await flush()
    }
    const seal: NewRecord = { type: 'journal.sealed', data: { count: writes.length, bytes: writes.reduce((sum, w) => sum + w.data.length, 0) } }
    const tail: NewRecord[] = chunk.length === 0 ? [seal] : [{ type: 'journal.writes', data: { entries: chunk } }, seal]
    await this.#store.append(stream, version, tail)
    return summary(stream, writes)
  }

  /** The sealed journal of `restoreId`; `E_NOT_FOUND` when none was sealed. */
  async load(restoreId: string): Promise<LoadedJournal> {
    const stream = WriteJournal.streamOf(restoreId)
    const folded = await this.#fold(stream)
    if (!folded.sealed) throw new DrError('E_NOT_FOUND', `no sealed write journal for restore ${restoreId}`, { restoreId, stream })
    return { writes: folded.writes, removed: folded.removed }
  }

  /** Marks the journal of `restoreId` removed (idempotent). */
  async remove(restoreId: string): Promise<void> {
    const stream = WriteJournal.streamOf(restoreId)
    const folded = await this.#fold(stream)
    if (folded.removed || folded.version === 0) return
    await this.#store.append(stream, folded.version, [{ type: 'journal.removed', data: {} }])
  }

  async #fold(stream: string): Promise<Folded> {
    let writes: CachedWrite[] = []
    let sealed = false
    let removed = false
    let version = 0
    for (const record of await this.#store.read(stream)) {
      const decoded = JournalRecord.decode({ type: record.type, data: record.data })
      if (isLeft(decoded)) throw new DrError('E_CORRUPT', `write journal record ${record.version} of "${stream}" is invalid`, { stream, version: record.version })
      const event = decoded.right
      version = record.version
      if (event.type === 'journal.writes') {
        for (const entry of event.data.entries) writes.push({ seq: entry.seq, offset: entry.offset, at: entry.at, data: new Uint8Array(Buffer.from(entry.data, 'base64')) })
      } else if (event.type === 'journal.sealed') {
        if (event.data.count !== writes.length) throw new DrError('E_CORRUPT', `write journal "${stream}" is sealed with ${event.data.count} writes but holds ${writes.length}`, { stream })
        sealed = true
      } else if (event.type === 'journal.reset') {
        writes = []
      } else {
        removed = true
      }
    }
    return { version, writes, sealed, removed }
  }
}

function summary(stream: string, writes: readonly CachedWrite[]): JournalSummary {
  let bytes = 0
  let oldestAt: number | null = null
  for (const write of writes) {
    bytes += write.data.length
    oldestAt = oldestAt === null ? write.at : Math.min(oldestAt, write.at)
  }
  return { stream, count: writes.length, bytes, oldestAt }
}
