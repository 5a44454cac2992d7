import { open, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { DrError } from '../../kernel/errors.js'
import { hasErrorCode, readFully, syncDirectory, writeFully } from '../fs/durable-io.js'
import { FRAME_HEADER_BYTES, FRAME_MAGIC_BYTES, JOURNAL_HEADER, checkFrame, decodeFrameMeta, type FrameMeta, type FrameProblem } from './journal-format.js'

/** What opening the journal file found. */
export interface OpenedJournalFile {
  readonly handle: FileHandle
  /** Offset where the next frame goes. */
  readonly end: number
  /** Bytes of torn tail cut off (0 when the journal ended cleanly). */
  readonly truncatedBytes: number
}

/** Called for every whole frame found, in file order; throws (`E_CORRUPT`) to refuse it. */
export type FrameVisitor = (meta: FrameMeta, offset: number, size: number) => void

/** Called with the file's bytes as the scan reads them, front to back (a range may be repeated). */
export type BytesObserver = (offset: number, bytes: Buffer) => void

const CHUNK_BYTES = 8 * 1024 * 1024

/** A window of the file kept in memory while scanning it front to back. */
class ScanWindow {
  readonly #handle: FileHandle
  readonly #size: number
  readonly #observe: BytesObserver | undefined
  buffer = Buffer.allocUnsafe(CHUNK_BYTES)
  /** File offset of `buffer[0]`. */
  start = 0
  /** Bytes of `buffer` holding file data. */
  length = 0

  constructor(handle: FileHandle, size: number, observe?: BytesObserver) {
    this.#handle = handle
    this.#size = size
    this.#observe = observe
  }

  /** True when bytes `[offset, offset + bytes)` of the file are in the window. */
  has(offset: number, bytes: number): boolean {
    return offset >= this.start && offset + bytes <= this.start + this.length
  }

  /** True when the window reaches the end of the file. */
  get atEnd(): boolean {
    return this.start + this.length >= this.#size
  }

  /** Moves the window to start at `offset` holding at least `bytes` bytes (fewer at end of file). */
  async fill(offset: number, bytes: number): Promise<void> {
    const wanted = Math.min(Math.max(bytes, CHUNK_BYTES), this.#size - offset)
    const keep = offset >= this.start && offset < this.start + this.length ? this.start + this.length - offset : 0
    const target = wanted > this.buffer.length ? Buffer.allocUnsafe(wanted) : this.buffer
    if (keep > 0) this.buffer.copy(target, 0, offset - this.start, offset - this.start + keep)
    this.buffer = target
    this.start = offset
    this.length = keep + (await readFully(this.#handle, target.subarray(keep), wanted - keep, offset + keep))
    this.#observe?.(offset, target.subarray(0, this.length))
  }
}

/** True when a whole frame with a valid checksum starts at `offset`. */
async function isFrameAt(handle: FileHandle, offset: number, size: number): Promise<boolean> {
  const header = Buffer.alloc(FRAME_HEADER_BYTES)
  const headerBytes = await readFully(handle, header, FRAME_HEADER_BYTES, offset)
  const first = checkFrame(header, 0, headerBytes)
  if (first.status !== 'short') return first.status === 'ok'
  if (headerBytes < FRAME_HEADER_BYTES || offset + first.need > size) return false
  const frame = Buffer.allocUnsafe(first.need)
  return checkFrame(frame, 0, await readFully(handle, frame, first.need, offset)).status === 'ok'
}

/** Looks for a whole, checksummed frame starting anywhere from `from` on; returns its offset. */
async function findFrameFrom(handle: FileHandle, from: number, size: number): Promise<number | undefined> {
  const window = new ScanWindow(handle, size)
  let searchFrom = from
  while (searchFrom + FRAME_HEADER_BYTES <= size) {
    if (!window.has(searchFrom, FRAME_HEADER_BYTES)) await window.fill(searchFrom, FRAME_HEADER_BYTES)
    const found = window.buffer.subarray(0, window.length).indexOf(FRAME_MAGIC_BYTES, searchFrom - window.start)
    if (found >= 0) {
      const candidate = window.start + found
      if (await isFrameAt(handle, candidate, size)) return candidate
      searchFrom = candidate + 1
    } else if (window.atEnd) {
      return undefined
    } else {
      // Keep the last bytes in view: a magic number may straddle two windows.
      searchFrom = Math.max(searchFrom + 1, window.start + window.length - (FRAME_MAGIC_BYTES.length - 1))
    }
  }
  return undefined
}

/** The `E_CORRUPT` for damage found in journal `file` at byte `offset`. */
export function journalCorruption(file: string, offset: number, reason: string, extra: Readonly<Record<string, unknown>> = {}): DrError {
  return new DrError('E_CORRUPT', `journal ${file} is damaged at byte ${offset}: ${reason}`, { file, offset, reason, ...extra })
}

/**
 * Reads every frame from `JOURNAL_HEADER.length` on, calling `visit` for each. A damaged frame that is
 * followed by a valid one is corruption (`E_CORRUPT` with file and offset); one that is not is a torn tail.
 * Returns where the valid frames end (the size of the file, or the start of a torn tail to cut off).
 */
async function scanFrames(
  handle: FileHandle,
  file: string,
  size: number,
  visit: FrameVisitor,
  observe: BytesObserver | undefined,
): Promise<number> {
  const window = new ScanWindow(handle, size, observe)
  let offset = JOURNAL_HEADER.length
  while (offset < size) {
    if (!window.has(offset, FRAME_HEADER_BYTES)) await window.fill(offset, FRAME_HEADER_BYTES)
    let check = checkFrame(window.buffer, offset - window.start, window.length)
    if (check.status === 'short' && offset + check.need <= size) {
      await window.fill(offset, check.need)
      check = checkFrame(window.buffer, 0, window.length)
    }
    if (check.status !== 'ok') {
      const problem: FrameProblem = check.status === 'short' ? 'incomplete frame' : check.problem
      const next = await findFrameFrom(handle, offset + 1, size)
      if (next !== undefined) throw journalCorruption(file, offset, problem, { nextFrameOffset: next })
      return offset
    }
    const meta = decodeFrameMeta(window.buffer, offset - window.start, check.size)
    if (meta === undefined) throw journalCorruption(file, offset, 'frame header does not decode')
    visit(meta, offset, check.size)
    offset += check.size
  }
  return offset
}

/**
 * Opens (creating when missing) the journal file `file`, checks its header, indexes every frame through
 * `visit` (showing the bytes read to `observe`), and cuts off a torn tail. Rejects with `E_CORRUPT` when the file
 * is not a journal or is damaged before its end.
 */
export async function openJournalFile(file: string, visit: FrameVisitor, observe?: BytesObserver): Promise<OpenedJournalFile> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r+')
  } catch (error) {
    if (!hasErrorCode(error, 'ENOENT')) throw error
    handle = await open(file, 'wx+')
    await syncDirectory(path.dirname(file))
  }
  try {
    const size = (await handle.stat()).size
    const header = Buffer.alloc(JOURNAL_HEADER.length)
    const headerBytes = await readFully(handle, header, Math.min(size, header.length), 0)
    if (!header.subarray(0, headerBytes).equals(JOURNAL_HEADER.subarray(0, headerBytes))) {
      throw journalCorruption(file, 0, 'not a drkit journal (bad file header)')
    }
    if (size < JOURNAL_HEADER.length) {
      // New, or torn while it was being created: (re)write the header.
      await handle.truncate(0)
      await writeFully(handle, JOURNAL_HEADER, 0)
      await handle.sync()
      return { handle, end: JOURNAL_HEADER.length, truncatedBytes: 0 }
    }
    const end = await scanFrames(handle, file, size, visit, observe)
    if (end < size) {
      await handle.truncate(end)
      await handle.sync()
    }
    return { handle, end, truncatedBytes: size - end }
  } catch (error) {
    await handle.close()
    throw error
  }
}
