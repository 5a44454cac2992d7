import type { JournalRecord } from '../../kernel/state-store.js'
import { readFullySync } from '../fs/durable-io.js'
import { checkFrame, decodeFrameMeta, decodeFrameRecords } from './journal-format.js'
import { journalCorruption } from './journal-file.js'
import type { StreamEntry } from './journal-index.js'
import type { OpenJournal } from './open-journal.js'

/** Journal bytes from file offset `start` on; `verified` when their checksums need no second look. */
interface FrameBytes {
  readonly buffer: Buffer
  readonly start: number
  readonly verified: boolean
}

/** Frames closer together than this in the file are read with one call. */
const READ_GAP_BYTES = 16 * 1024
/** The most bytes read with one call (a larger frame is read alone). */
const READ_SPAN_BYTES = 1024 * 1024

/**
 * Reads a stream's records back from an open journal: from the cache of the journal's last bytes when it holds
 * them, else with positioned synchronous reads of bytes already durable, frames that lie close together read
 * with one call into a buffer reused between reads. Every frame is checked against the index (and, when read
 * from the file, against its checksum); a mismatch is `E_CORRUPT` naming the file and offset.
 */
export class JournalReader {
  #buffer: Buffer | undefined

  /** The records of `entry` after `afterVersion`, in version order. */
  records(journal: OpenJournal, entry: StreamEntry, afterVersion: number): JournalRecord[] {
    const { frames } = journal.index
    const ids = entry.frames
    const records: JournalRecord[] = []
    let position = journal.index.frameHolding(entry, afterVersion + 1)
    while (position < ids.length) {
      const start = frames.offset(ids[position] as number)
      let end = start + frames.size(ids[position] as number)
      let next = position + 1
      while (next < ids.length) {
        const id = ids[next] as number
        const offset = frames.offset(id)
        if (offset - end > READ_GAP_BYTES || offset + frames.size(id) - start > READ_SPAN_BYTES) break
        end = offset + frames.size(id)
        next++
      }
      // Cached bytes were checksummed when the scan read them, or are the very bytes this store wrote.
      const cached = journal.recent.read(start, end - start)
      const buffer = cached ?? this.#readFile(journal, start, end - start)
      for (let index = position; index < next; index++) {
        decodeFrame(journal, entry, ids[index] as number, { buffer, start, verified: cached !== undefined }, afterVersion, records)
      }
      position = next
    }
    return records
  }

  /** Drops the reused read buffer (the store is closing). */
  release(): void {
    this.#buffer = undefined
  }

  /** Bytes `[start, start + length)` of the journal file, read into a buffer reused between reads. */
  #readFile(journal: OpenJournal, start: number, length: number): Buffer {
    this.#buffer ??= Buffer.allocUnsafe(READ_SPAN_BYTES)
    const buffer = length > READ_SPAN_BYTES ? Buffer.allocUnsafe(length) : this.#buffer
    const read = readFullySync(journal.handle.fd, buffer, length, start)
    if (read < length) throw journalCorruption(journal.file, start + read, 'journal file is shorter than its index')
    return buffer
  }
}

/** Checks frame `id` of `entry` in `bytes` against the index and appends its records after `afterVersion`. */
function decodeFrame(journal: OpenJournal, entry: StreamEntry, id: number, bytes: FrameBytes, afterVersion: number, into: JournalRecord[]): void {
  const { frames } = journal.index
  const { buffer } = bytes
  const offset = frames.offset(id)
  const size = frames.size(id)
  const at = offset - bytes.start
  const check = checkFrame(buffer, at, at + size, !bytes.verified)
  if (check.status !== 'ok' || check.size !== size) {
    throw journalCorruption(journal.file, offset, check.status === 'bad' ? check.problem : 'frame size changed since the journal was opened')
  }
  const meta = decodeFrameMeta(buffer, at, size)
  if (meta === undefined || meta.stream !== entry.name || meta.firstVersion !== frames.firstVersion(id)) {
    throw journalCorruption(journal.file, offset, `frame is not the one indexed for stream "${entry.name}"`)
  }
  const records = decodeFrameRecords(buffer.toString('utf8', meta.recordsStart, meta.end), meta, afterVersion)
  if (records === undefined) throw journalCorruption(journal.file, offset, 'records do not decode')
  for (const record of records) into.push(record)
}
