import * as t from 'io-ts'
import { JsonValue, Name, NonNegativeInt, PositiveInt, type Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError } from '../../kernel/errors.js'
import { MAX_BLOCKS } from './block-map.js'

/** Smallest block size a volume may have. */
const MIN_BLOCK_SIZE = 4096
/** Largest block size a volume may have. */
const MAX_BLOCK_SIZE = 1 << 20

const Access = t.readonlyArray(t.keyof({ read: null, write: null }), 'access rights ("read" | "write")[]')
const Text = new t.Type<string, string, unknown>(
  'non-empty string of at most 1024 characters',
  (u): u is string => typeof u === 'string' && u.length > 0 && u.length <= 1024,
  (u, c) => (typeof u === 'string' && u.length > 0 && u.length <= 1024 ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/** Codec of a volume creation request. */
export const CreateVolumeInput = t.intersection([
  t.type({ name: Name, sizeBytes: PositiveInt }),
  t.partial({ blockSize: PositiveInt }),
])

/** Codec of a share creation request. */
export const CreateShareInput = t.type({
  name: Name,
  volume: Name,
  path: Text,
  protocol: t.keyof({ smb: null, nfs: null }),
  access: Access,
})

/** Codec of access rights. */
export const AccessInput = Access

/** Codec of snapshot labels. */
export const LabelsInput = t.record(t.string, t.string)

/** An `E_INVALID_INPUT` rejection of the local adapter: `local: <message>`, with the adapter in its details. */
export function invalid(message: string, details: Record<string, unknown>): DrError {
  return new DrError('E_INVALID_INPUT', `local: ${message}`, { adapter: 'local', ...details })
}

/** Checks a resource name (volume, snapshot, share, clone). */
export function checkName(value: unknown, what: string): string {
  return decode(Name, value, what)
}

/** Checks a free-form key or tag (configuration keys, hold tags). */
export function checkText(value: unknown, what: string): string {
  return decode(Text, value, what)
}

/** Checks a byte offset or length. */
export function checkBytes(value: unknown, what: string): number {
  return decode(NonNegativeInt, value, what)
}

/** Checks a configuration value: JSON that survives a round trip. */
export function checkJson(value: unknown, what: string): Json {
  return decode(JsonValue, value, what)
}

/** Checks a block size: a power of two from 4 KiB to 1 MiB. */
export function checkBlockSize(blockSize: number): void {
  if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw invalid(`blockSize ${blockSize} must be a power of two from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE}`, { blockSize })
  }
}

/** Checks a volume size: a positive multiple of the block size, addressable by the block map. */
export function checkVolumeSize(sizeBytes: unknown, blockSize: number): number {
  const size = decode(PositiveInt, sizeBytes, 'sizeBytes')
  if (size % blockSize !== 0) throw invalid(`sizeBytes ${size} must be a multiple of the block size ${blockSize}`, { sizeBytes: size, blockSize })
  if (size / blockSize > MAX_BLOCKS) {
    throw invalid(`sizeBytes ${size} exceeds ${MAX_BLOCKS} blocks of ${blockSize} bytes`, { sizeBytes: size, blockSize })
  }
  return size
}

/** Checks that `[offset, offset + length)` lies within a volume of `sizeBytes`. */
export function checkRange(offset: number, length: number, sizeBytes: number, volume: string): void {
  if (offset + length > sizeBytes) {
    throw invalid(`range [${offset}, ${offset + length}) is past the end of volume "${volume}" (${sizeBytes} bytes)`, {
      volume,
      offset,
      length,
      sizeBytes,
    })
  }
}

/** Checks that `data` is a byte array. */
export function checkData(data: unknown): Uint8Array {
  if (!(data instanceof Uint8Array)) throw invalid('data must be a Uint8Array', { field: 'data' })
  return data
}
