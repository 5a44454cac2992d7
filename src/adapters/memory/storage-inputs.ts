import { Name, JsonValue, type Json } from '../../kernel/codecs.js'
import { DrError, type DrErrorCode } from '../../kernel/errors.js'

/** The adapter name the memory storage reports in errors and as `kind`. */
export const MEMORY_KIND = 'memory'

const MIN_BLOCK_SIZE = 4 * 1024
const MAX_BLOCK_SIZE = 1024 * 1024

/** A rejection from the memory storage: `memory.<operation>: <message>`, naming adapter and operation in details. */
export function storageError(code: DrErrorCode, operation: string, message: string, details: Record<string, unknown> = {}): DrError {
  return new DrError(code, `${MEMORY_KIND}.${operation}: ${message}`, { adapter: MEMORY_KIND, operation, ...details })
}

function invalid(operation: string, field: string, rule: string, value: unknown): DrError {
  return storageError('E_INVALID_INPUT', operation, `${field} ${rule}`, { field, value: describe(value) })
}

function describe(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? Object.prototype.toString.call(value) : value
}

/** Checks that a request argument is an object, so its fields can be read. */
export function requireRecord<T extends object>(operation: string, field: string, value: T): T {
  if (typeof value !== 'object' || value === null) throw invalid(operation, field, 'must be an object', value)
  return value
}

/** Checks a resource name (volume, snapshot, share): 1–128 of `[A-Za-z0-9._-]`, starting with a letter or digit. */
export function requireName(operation: string, field: string, value: unknown): string {
  if (!Name.is(value)) throw invalid(operation, field, 'must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit', value)
  return value
}

/** Checks a boolean setting such as `online` or `writable`. */
export function requireFlag(operation: string, field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(operation, field, 'must be a boolean', value)
  return value
}

/** Checks a non-empty string key (hold tag, configuration key). */
export function requireKey(operation: string, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(operation, field, 'must be a non-empty string', value)
  return value
}

/** Checks a block size: a power of two from 4 KiB to 1 MiB. */
export function requireBlockSize(operation: string, field: string, value: unknown): number {
  const ok =
    typeof value === 'number' &&
    Number.isSafeInteger(value) &&
    value >= MIN_BLOCK_SIZE &&
    value <= MAX_BLOCK_SIZE &&
    (value & (value - 1)) === 0
  if (!ok) throw invalid(operation, field, `must be a power of two from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE} bytes`, value)
  return value
}

/** Checks a volume size: a positive whole number of blocks. */
export function requireVolumeSize(operation: string, value: unknown, blockSize: number): number {
  const ok = typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value % blockSize === 0
  if (!ok) throw invalid(operation, 'sizeBytes', `must be a positive multiple of the block size ${blockSize}`, value)
  return value
}

/** Checks a byte range `[offset, offset + length)` against a volume or snapshot of `sizeBytes`. */
export function requireRange(operation: string, offset: unknown, length: unknown, sizeBytes: number): { offset: number; length: number } {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw invalid(operation, 'offset', 'must be a non-negative integer', offset)
  }
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw invalid(operation, 'length', 'must be a non-negative integer', length)
  }
  if (offset + length > sizeBytes) {
    throw storageError('E_INVALID_INPUT', operation, `range [${offset}, ${offset + length}) ends past the end (${sizeBytes} bytes)`, {
      field: 'offset',
      offset,
      length,
      sizeBytes,
    })
  }
  return { offset, length }
}

/** Checks that written data is a `Uint8Array`. */
export function requireBytes(operation: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(operation, 'data', 'must be a Uint8Array', value)
  return value
}

/** Checks snapshot labels (string → string) and returns a copy. */
export function requireLabels(operation: string, value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(operation, 'labels', 'must be an object', value)
  const labels: Record<string, string> = {}
  for (const [key, label] of Object.entries(value)) {
    if (typeof label !== 'string') throw invalid(operation, `labels.${key}`, 'must be a string', label)
    labels[key] = label
  }
  return labels
}

/** The rights a share can grant. */
export type ShareRight = 'read' | 'write'

/** Checks a list of share rights and returns it without duplicates, `read` before `write`. */
export function requireAccess(operation: string, value: unknown): readonly ShareRight[] {
  if (!Array.isArray(value) || !value.every((right) => right === 'read' || right === 'write')) {
    throw invalid(operation, 'access', "must be a list of 'read' and 'write'", value)
  }
  return (['read', 'write'] as const).filter((right) => value.includes(right))
}

/** Checks a share protocol. */
export function requireProtocol(operation: string, value: unknown): 'smb' | 'nfs' {
  if (value !== 'smb' && value !== 'nfs') throw invalid(operation, 'protocol', "must be 'smb' or 'nfs'", value)
  return value
}

/** Checks a share path: a non-empty string. */
export function requirePath(operation: string, value: unknown): string {
  return requireKey(operation, 'path', value)
}

/** Checks a configuration value and returns a deep copy of it. */
export function requireJson(operation: string, value: unknown): Json {
  if (!JsonValue.is(value)) throw invalid(operation, 'value', 'must be a JSON value', value)
  return structuredClone(value)
}
