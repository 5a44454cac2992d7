import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'

/**
 * Frame kinds: the first byte of every frame on a mirror channel.
 *
 * @public
 */
export const MIRROR_FRAME = { control: 0x01, chunk: 0x02, blocks: 0x03 } as const

/**
 * The protocol version spoken in `hello`.
 *
 * @public
 */
export const PROTOCOL_VERSION = 2

const Count = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0, 'Count')
const DeltaSetNumber = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0 && n < 0xffffffff, 'DeltaSetNumber')
const Epoch = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 1 && n < 0xffffffff, 'Epoch')
const Text = t.refinement(t.string, (s) => s.length > 0 && s.length <= 256, 'Text')

/** Source → destination, first frame of a replication channel. */
const Hello = t.type({
  t: t.literal('hello'),
  v: t.literal(PROTOCOL_VERSION),
  session: Text,
  epoch: Epoch,
  site: Text,
  volume: Text,
  blockSize: Count,
})

/**
 * Destination → source, answer to hello and after every reconnect: what the destination already has — the last
 * delta set played, the complete ones waiting, and the ones partly received (at most two: a full copy and a delta
 * set buffered while it arrives), each with the chunks durably stored.
 */
const StateFrame = t.type({
  t: t.literal('state'),
  epoch: Epoch,
  played: t.union([DeltaSetNumber, t.null]),
  complete: t.array(DeltaSetNumber),
  partials: t.array(t.type({ n: DeltaSetNumber, received: Count, crc: Count, full: t.boolean })),
})

/** Source → destination, sent after the last chunk of a delta set: what the destination must have received. */
const Header = t.type({
  t: t.literal('header'),
  epoch: Epoch,
  n: DeltaSetNumber,
  baseN: t.union([DeltaSetNumber, t.null]),
  chunks: Count,
  blocks: Count,
  holes: Count,
  dataBytes: Count,
  sizeBytes: Count,
  blockSize: Count,
  crc: Count,
  cutAt: Count,
})

/** Destination → source: delta set `n` is completely received (`complete`) or applied (`played`). */
const Ack = t.type({ t: t.literal('ack'), epoch: Epoch, n: DeltaSetNumber, status: t.union([t.literal('complete'), t.literal('played')]) })

/** Destination → source: what arrived for `n` from `chunk` on was refused (bad checksum); send it again. */
const Resend = t.type({ t: t.literal('resend'), epoch: Epoch, n: DeltaSetNumber, chunk: Count, reason: t.string })

/** Either side: the channel is refused, with a stable error code. */
const Refused = t.type({
  t: t.literal('refused'),
  code: t.union([t.literal('E_FENCED'), t.literal('E_NOT_FOUND'), t.literal('E_PRECONDITION'), t.literal('E_INVALID_INPUT'), t.literal('E_CORRUPT')]),
  message: t.string,
  epoch: t.union([Epoch, t.null]),
})

/** Old source → new primary, during a resync: send me these blocks as they are in `snapshot`. */
const Fetch = t.type({
  t: t.literal('fetch'),
  session: Text,
  epoch: Epoch,
  snapshot: Text,
  batch: Count,
  blocks: t.array(Count),
})

/** New primary → old source: every block frame of batch `batch` has been sent. */
const FetchDone = t.type({ t: t.literal('fetchDone'), epoch: Epoch, batch: Count, frames: Count, blockSize: Count })

/**
 * Every control frame of the mirror protocol, as an io-ts codec. A frame that does not decode is refused.
 *
 * @public
 */
export const ControlFrameCodec = t.union([Hello, StateFrame, Header, Ack, Resend, Refused, Fetch, FetchDone], 'MirrorControlFrame')

/**
 * One decoded control frame.
 *
 * @public
 */
export type ControlFrame = t.TypeOf<typeof ControlFrameCodec>
/** The hello frame. */
export type HelloFrame = t.TypeOf<typeof Hello>
/** The state frame. */
export type StateFrameValue = t.TypeOf<typeof StateFrame>
/** The header frame. */
export type HeaderFrame = t.TypeOf<typeof Header>
/** The fetch frame. */
export type FetchFrame = t.TypeOf<typeof Fetch>

/**
 * One run of blocks inside a chunk: `count` blocks from `start`, either data (`data` holds `count` blocks) or a
 * hole ("zero these blocks", no data on the wire).
 *
 * @public
 */
export interface BlockRun {
  readonly start: number
  readonly count: number
  readonly data: Uint8Array | null
}

/**
 * The fixed header of a chunk frame: which delta set (and its base) of which epoch, the chunk's index, how many
 * runs it carries and the CRC-32 of its payload.
 *
 * @public
 */
export interface ChunkHeader {
  readonly epoch: number
  readonly n: number
  readonly baseN: number | null
  readonly index: number
  readonly runs: number
  readonly crc: number
}

/**
 * A decoded frame: control (JSON), a delta-set chunk, or a batch of fetched blocks.
 *
 * @public
 */
export type Frame =
  | { readonly kind: 'control'; readonly frame: ControlFrame }
  | { readonly kind: 'chunk'; readonly header: ChunkHeader; readonly payload: Uint8Array; readonly bytes: Uint8Array }
  | { readonly kind: 'blocks'; readonly epoch: number; readonly batch: number; readonly runs: number; readonly crc: number; readonly payload: Uint8Array }

const NONE = 0xffffffff
const CHUNK_HEADER = 32
const BLOCKS_HEADER = 24
const RUN_HEADER = 9
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function corrupt(message: string): DrError {
  return new DrError('E_CORRUPT', `mirror protocol: ${message}`, { protocol: 'drkit.mirror' })
}

/**
 * Encodes a control frame (type byte + JSON).
 *
 * @public
 */
export function encodeControl(frame: ControlFrame): Uint8Array {
  const json = encoder.encode(JSON.stringify(ControlFrameCodec.encode(frame)))
  const bytes = new Uint8Array(json.length + 1)
  bytes[0] = MIRROR_FRAME.control
  bytes.set(json, 1)
  return bytes
}

/** The bytes the runs take in a payload. */
function runsSize(runs: readonly BlockRun[]): number {
  let size = 0
  for (const run of runs) size += RUN_HEADER + (run.data?.length ?? 0)
  return size
}

/** Writes one run header at `at`: start block, block count, kind (1 for a hole). */
function writeRunHeader(view: DataView, at: number, start: number, count: number, hole: boolean): void {
  view.setUint32(at, start, true)
  view.setUint32(at + 4, count, true)
  view.setUint8(at + 8, hole ? 1 : 0)
}

/** Writes the runs into `bytes` from `offset`: per run a 9-byte header (start, count, kind) then its data. */
function writeRuns(bytes: Uint8Array, offset: number, runs: readonly BlockRun[]): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = offset
  for (const run of runs) {
    writeRunHeader(view, at, run.start, run.count, run.data === null)
    at += RUN_HEADER
    if (run.data !== null) {
      bytes.set(run.data, at)
      at += run.data.length
    }
  }
}

/**
 * Encodes the runs of a chunk as a payload: per run a 9-byte header (start, count, kind) then its data.
 *
 * @public
 */
export function encodeRuns(runs: readonly BlockRun[]): Uint8Array {
  const payload = new Uint8Array(runsSize(runs))
  writeRuns(payload, 0, runs)
  return payload
}

/**
 * Decodes a payload into runs, given the block size of the volume. Rejects with `E_CORRUPT` when the payload
 * does not hold exactly `expectedRuns` well-formed runs.
 *
 * @public
 */
export function decodeRuns(payload: Uint8Array, blockSize: number, expectedRuns: number): BlockRun[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const runs: BlockRun[] = []
  let at = 0
  while (at < payload.length) {
    if (at + RUN_HEADER > payload.length) throw corrupt('truncated run header')
    const start = view.getUint32(at, true)
    const count = view.getUint32(at + 4, true)
    const kind = view.getUint8(at + 8)
    at += RUN_HEADER
    if (count === 0 || kind > 1) throw corrupt('malformed run')
    if (kind === 1) {
      runs.push({ start, count, data: null })
      continue
    }
    const length = count * blockSize
    if (at + length > payload.length) throw corrupt('truncated run data')
    runs.push({ start, count, data: payload.subarray(at, at + length) })
    at += length
  }
  if (runs.length !== expectedRuns) throw corrupt(`expected ${expectedRuns} runs, found ${runs.length}`)
  return runs
}

/** One run of a chunk as planned: `count` blocks from block `start`, data or a hole. */
export interface RunShape {
  readonly start: number
  readonly count: number
  readonly hole: boolean
}

/**
 * Where the parts of a chunk frame go: the frame's size, and for each data run (in order) the offset its data
 * starts at, so the data can be read straight into place (see {@link writeChunkFrame}).
 */
export function chunkFrameLayout(runs: readonly RunShape[], blockSize: number): { readonly size: number; readonly dataAt: readonly number[] } {
  const dataAt: number[] = []
  let at = CHUNK_HEADER
  for (const run of runs) {
    at += RUN_HEADER
    if (run.hole) continue
    dataAt.push(at)
    at += run.count * blockSize
  }
  return { size: at, dataAt }
}

/**
 * Completes a chunk frame laid out by {@link chunkFrameLayout} whose run data already sits in place: writes the
 * run headers and the frame header, and returns the CRC-32 of the payload (which the header carries too).
 */
export function writeChunkFrame(frame: Uint8Array, header: Omit<ChunkHeader, 'crc' | 'runs'>, runs: readonly RunShape[], blockSize: number, crc: (payload: Uint8Array) => number): number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  let at = CHUNK_HEADER
  for (const run of runs) {
    writeRunHeader(view, at, run.start, run.count, run.hole)
    at += RUN_HEADER + (run.hole ? 0 : run.count * blockSize)
  }
  const payloadCrc = crc(frame.subarray(CHUNK_HEADER)) >>> 0
  writeChunkHeader(view, { ...header, runs: runs.length, crc: payloadCrc }, frame.length - CHUNK_HEADER)
  return payloadCrc
}

/** Writes the fixed header of a chunk frame whose payload is `payloadBytes` long. */
function writeChunkHeader(view: DataView, header: ChunkHeader, payloadBytes: number): void {
  view.setUint8(0, MIRROR_FRAME.chunk)
  view.setUint8(1, header.baseN === null ? 1 : 0)
  view.setUint32(4, header.epoch, true)
  view.setUint32(8, header.n, true)
  view.setUint32(12, header.baseN ?? NONE, true)
  view.setUint32(16, header.index, true)
  view.setUint32(20, header.runs, true)
  view.setUint32(24, header.crc >>> 0, true)
  view.setUint32(28, payloadBytes, true)
}

/**
 * Encodes a chunk frame around an encoded payload.
 *
 * @public
 */
export function encodeChunk(header: ChunkHeader, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(CHUNK_HEADER + payload.length)
  writeChunkHeader(new DataView(bytes.buffer), header, payload.length)
  bytes.set(payload, CHUNK_HEADER)
  return bytes
}

/**
 * Encodes a frame of fetched blocks (resync before-images).
 *
 * @public
 */
export function encodeBlocks(epoch: number, batch: number, runs: number, crc: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(BLOCKS_HEADER + payload.length)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, MIRROR_FRAME.blocks)
  view.setUint32(4, epoch, true)
  view.setUint32(8, batch, true)
  view.setUint32(12, runs, true)
  view.setUint32(16, crc >>> 0, true)
  view.setUint32(20, payload.length, true)
  bytes.set(payload, BLOCKS_HEADER)
  return bytes
}

/**
 * Decodes any frame. Unknown frame types, truncated binary frames and control frames that fail their codec are
 * rejected with `E_CORRUPT`: a mirror agent never acts on a frame it does not fully understand.
 *
 * @public
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length === 0) throw corrupt('empty frame')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (bytes[0]) {
    case MIRROR_FRAME.control: {
      let raw: unknown
      try {
        raw = JSON.parse(decoder.decode(bytes.subarray(1)))
      } catch {
        throw corrupt('control frame is not JSON')
      }
      const decoded = ControlFrameCodec.decode(raw)
      if (isLeft(decoded)) throw corrupt('control frame does not match any known frame')
      return { kind: 'control', frame: decoded.right }
    }
    case MIRROR_FRAME.chunk: {
      if (bytes.length < CHUNK_HEADER) throw corrupt('truncated chunk header')
      const length = view.getUint32(28, true)
      if (bytes.length !== CHUNK_HEADER + length) throw corrupt('chunk length does not match its header')
      const baseRaw = view.getUint32(12, true)
      const full = (view.getUint8(1) & 1) === 1
      if (full !== (baseRaw === NONE)) throw corrupt('chunk base flag does not match its base')
      const header: ChunkHeader = {
        epoch: view.getUint32(4, true),
        n: view.getUint32(8, true),
        baseN: full ? null : baseRaw,
        index: view.getUint32(16, true),
        runs: view.getUint32(20, true),
        crc: view.getUint32(24, true),
      }
      return { kind: 'chunk', header, payload: bytes.subarray(CHUNK_HEADER), bytes }
    }
    case MIRROR_FRAME.blocks: {
      if (bytes.length < BLOCKS_HEADER) throw corrupt('truncated blocks header')
      const length = view.getUint32(20, true)
      if (bytes.length !== BLOCKS_HEADER + length) throw corrupt('blocks length does not match its header')
      return {
        kind: 'blocks',
        epoch: view.getUint32(4, true),
        batch: view.getUint32(8, true),
        runs: view.getUint32(12, true),
        crc: view.getUint32(16, true),
        payload: bytes.subarray(BLOCKS_HEADER),
      }
    }
    default:
      throw corrupt(`unknown frame type ${bytes[0] ?? -1}`)
  }
}
