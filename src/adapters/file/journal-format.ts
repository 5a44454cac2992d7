import { DrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { JournalRecord, StateSnapshot } from '../../kernel/state-store.js'
import { crc32 } from '../../kernel/crc32.js'

/*
 * The journal file is a 16-byte header followed by frames, one frame per append call (so a multi-record append
 * is atomic: its frame is either whole and checksummed, or a torn tail). All integers are little-endian.
 *
 *   frame  = magic u32 | crc32 u32 | length u32 | body[length]          crc32 covers length + body
 *   body   = firstVersion f64 | at f64 | count u32 | streamBytes u16 | stream utf8 | records JSON
 *   records JSON = [{"type": string, "data": Json}, ...]                 `count` entries, versions firstVersion…
 *
 * The binary part of the body is all that opening the journal needs (stream, versions); the JSON is decoded when
 * the records are read. The magic starts with 0xFF, a byte that never occurs in UTF-8 text, so the next frame
 * after a damaged one can be found by searching for it.
 */

/** The first bytes of every journal file: format name and version. */
export const JOURNAL_HEADER = Buffer.from('DRKIT-JOURNAL-1\n', 'latin1')

/** The magic number that starts every frame (bytes FF 44 4A 31). */
export const FRAME_MAGIC = 0x314a44ff

/** {@link FRAME_MAGIC} as the bytes it is stored as. */
export const FRAME_MAGIC_BYTES = Buffer.from([0xff, 0x44, 0x4a, 0x31])

/** Bytes of magic, checksum and length in front of every frame body. */
export const FRAME_HEADER_BYTES = 12

/** The fixed part of a frame body before the stream name. */
const BODY_FIXED_BYTES = 22

/** The largest frame body accepted (one append call). A header that claims more is damaged. */
export const MAX_FRAME_BODY_BYTES = 256 * 1024 * 1024

/** Why the bytes at an offset are not a frame. */
export type FrameProblem = 'incomplete frame' | 'bad magic' | 'bad length' | 'checksum mismatch'

/** The outcome of checking the bytes at one offset: a whole frame, too few bytes to tell, or not a frame. */
export type FrameCheck =
  | { readonly status: 'ok'; readonly size: number }
  | { readonly status: 'short'; readonly need: number }
  | { readonly status: 'bad'; readonly problem: FrameProblem }

/** The binary part of a frame body: everything needed to index the frame without decoding its records. */
export interface FrameMeta {
  readonly stream: string
  readonly firstVersion: number
  readonly count: number
  readonly at: number
  /** Offset of the records JSON inside the buffer the frame was decoded from. */
  readonly recordsStart: number
  /** Offset just past the frame inside that buffer. */
  readonly end: number
}

/**
 * Encodes one append as a frame. Throws `E_INVALID_INPUT` when the append is larger than a frame may be.
 */
export function encodeFrame(stream: string, firstVersion: number, at: number, count: number, recordsJson: string): Buffer {
  const streamBytes = Buffer.byteLength(stream, 'utf8')
  const bodyBytes = BODY_FIXED_BYTES + streamBytes + Buffer.byteLength(recordsJson, 'utf8')
  if (bodyBytes > MAX_FRAME_BODY_BYTES) {
    throw new DrError('E_INVALID_INPUT', `append to "${stream}" is ${bodyBytes} bytes; the file journal takes at most ${MAX_FRAME_BODY_BYTES} per append`, {
      stream,
      bytes: bodyBytes,
      limit: MAX_FRAME_BODY_BYTES,
    })
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes)
  frame.writeUInt32LE(FRAME_MAGIC, 0)
  frame.writeUInt32LE(bodyBytes, 8)
  const body = FRAME_HEADER_BYTES
  frame.writeDoubleLE(firstVersion, body)
  frame.writeDoubleLE(at, body + 8)
  frame.writeUInt32LE(count, body + 16)
  frame.writeUInt16LE(streamBytes, body + 20)
  frame.write(stream, body + BODY_FIXED_BYTES, 'utf8')
  frame.write(recordsJson, body + BODY_FIXED_BYTES + streamBytes, 'utf8')
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4)
  return frame
}

/**
 * Checks framing and checksum of the frame that should start at `start`, with bytes available up to `end`.
 * `verifyChecksum: false` skips the checksum, for bytes that were checked (or produced) in memory already.
 */
export function checkFrame(buffer: Buffer, start: number, end: number, verifyChecksum = true): FrameCheck {
  if (end - start < FRAME_HEADER_BYTES) return { status: 'short', need: FRAME_HEADER_BYTES }
  if (buffer.readUInt32LE(start) !== FRAME_MAGIC) return { status: 'bad', problem: 'bad magic' }
  const bodyBytes = buffer.readUInt32LE(start + 8)
  if (bodyBytes < BODY_FIXED_BYTES || bodyBytes > MAX_FRAME_BODY_BYTES) return { status: 'bad', problem: 'bad length' }
  const size = FRAME_HEADER_BYTES + bodyBytes
  if (end - start < size) return { status: 'short', need: size }
  if (verifyChecksum && crc32(buffer.subarray(start + 8, start + size)) !== buffer.readUInt32LE(start + 4)) return { status: 'bad', problem: 'checksum mismatch' }
  return { status: 'ok', size }
}

/**
 * Decodes the binary part of a frame that passed {@link checkFrame}. Returns undefined when it does not make
 * sense (a frame with a valid checksum that no writer could have produced).
 */
export function decodeFrameMeta(buffer: Buffer, start: number, size: number): FrameMeta | undefined {
  const body = start + FRAME_HEADER_BYTES
  const end = start + size
  const firstVersion = buffer.readDoubleLE(body)
  const at = buffer.readDoubleLE(body + 8)
  const count = buffer.readUInt32LE(body + 16)
  const streamBytes = buffer.readUInt16LE(body + 20)
  const recordsStart = body + BODY_FIXED_BYTES + streamBytes
  if (!Number.isSafeInteger(firstVersion) || firstVersion < 1 || !Number.isFinite(at) || count < 1 || streamBytes < 1 || recordsStart > end) {
    return undefined
  }
  const stream = buffer.toString('utf8', body + BODY_FIXED_BYTES, recordsStart)
  return { stream, firstVersion, count, at, recordsStart, end }
}

function isRecordShape(value: unknown): value is { readonly type: string; readonly data: Json } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const candidate = value as { readonly type?: unknown; readonly data?: unknown }
  return typeof candidate.type === 'string' && candidate.type.length > 0 && candidate.data !== undefined
}

/**
 * Decodes the records of a frame from its JSON and returns those with a version above `afterVersion`.
 * Returns undefined when the JSON is not the `count` records the frame announces.
 */
export function decodeFrameRecords(recordsJson: string, meta: Omit<FrameMeta, 'recordsStart' | 'end'>, afterVersion: number): JournalRecord[] | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(recordsJson)
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== meta.count) return undefined
  const records: JournalRecord[] = []
  for (let index = 0; index < parsed.length; index++) {
    const entry: unknown = parsed[index]
    if (!isRecordShape(entry)) return undefined
    const version = meta.firstVersion + index
    if (version > afterVersion) records.push({ stream: meta.stream, version, type: entry.type, data: entry.data, at: meta.at })
  }
  return records
}

/** The first bytes of every snapshot file. */
const SNAPSHOT_HEADER = Buffer.from('DRKIT-SNAPSHOT1\n', 'latin1')

/** Encodes a snapshot file: header, crc32 u32 and length u32 of the JSON, then the JSON. */
export function encodeSnapshot(snapshot: StateSnapshot): Buffer {
  const json = Buffer.from(JSON.stringify({ stream: snapshot.stream, version: snapshot.version, state: snapshot.state }), 'utf8')
  const file = Buffer.allocUnsafe(SNAPSHOT_HEADER.length + 8 + json.length)
  SNAPSHOT_HEADER.copy(file, 0)
  file.writeUInt32LE(crc32(json), SNAPSHOT_HEADER.length)
  file.writeUInt32LE(json.length, SNAPSHOT_HEADER.length + 4)
  json.copy(file, SNAPSHOT_HEADER.length + 8)
  return file
}

/** Decodes a snapshot file; undefined when it is damaged in any way. */
export function decodeSnapshot(file: Buffer): StateSnapshot | undefined {
  const start = SNAPSHOT_HEADER.length + 8
  if (file.length < start || !file.subarray(0, SNAPSHOT_HEADER.length).equals(SNAPSHOT_HEADER)) return undefined
  if (file.readUInt32LE(SNAPSHOT_HEADER.length + 4) !== file.length - start) return undefined
  const json = file.subarray(start)
  if (crc32(json) !== file.readUInt32LE(SNAPSHOT_HEADER.length)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(json.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const candidate = parsed as { readonly stream?: unknown; readonly version?: unknown; readonly state?: unknown }
  const { stream, version, state } = candidate
  if (typeof stream !== 'string' || typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0 || state === undefined) return undefined
  return { stream, version, state: state as Json }
}
