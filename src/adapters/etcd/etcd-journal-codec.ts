import { DrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { JournalRecord, NewRecord, StateSnapshot } from '../../kernel/state-store.js'

/** One append as stored under its key: who appended it (for retries), when, and the records. */
interface StoredBatch {
  readonly id: string
  readonly at: number
  readonly records: ReadonlyArray<{ readonly type: string; readonly data: Json }>
}

/** The JSON text of one append. */
export function encodeBatch(id: string, at: number, records: readonly NewRecord[]): string {
  const batch: StoredBatch = { id, at, records: records.map(({ type, data }) => ({ type, data })) }
  return JSON.stringify(batch)
}

function corrupt(key: Buffer, rule: string): DrError {
  return new DrError('E_CORRUPT', `etcd state store: key "${key.toString('utf8')}" is not a drkit journal entry (${rule})`, {
    adapter: 'etcd',
    key: key.toString('utf8'),
  })
}

function parseJson(key: Buffer, value: Buffer): unknown {
  try {
    return JSON.parse(value.toString('utf8')) as unknown
  } catch (error) {
    throw corrupt(key, `not JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
}

function isObject(u: unknown): u is Readonly<Record<string, unknown>> {
  return typeof u === 'object' && u !== null && !Array.isArray(u)
}

/** Reads one append back; `E_CORRUPT` when the value is not one. */
export function decodeBatch(key: Buffer, value: Buffer): StoredBatch {
  const parsed = parseJson(key, value)
  if (!isObject(parsed) || typeof parsed['id'] !== 'string' || typeof parsed['at'] !== 'number' || !Array.isArray(parsed['records'])) {
    throw corrupt(key, 'expected { id, at, records }')
  }
  const records = parsed['records'] as readonly unknown[]
  if (records.length === 0) throw corrupt(key, 'an append without records')
  for (const record of records) {
    if (!isObject(record) || typeof record['type'] !== 'string' || !('data' in record)) throw corrupt(key, 'a record without { type, data }')
  }
  return parsed as unknown as StoredBatch
}

/**
 * The journal records of an append that ends at `lastVersion` and was committed at etcd revision `revision` (its
 * key's modification revision), of those with a version above `afterVersion`.
 */
export function batchRecords(stream: string, lastVersion: number, batch: StoredBatch, revision: number, afterVersion = 0): JournalRecord[] {
  const first = lastVersion - batch.records.length + 1
  const out: JournalRecord[] = []
  batch.records.forEach((record, index) => {
    const version = first + index
    if (version > afterVersion) out.push({ stream, version, type: record.type, data: record.data, at: batch.at, revision })
  })
  return out
}

/** The JSON text of a saved snapshot. */
export function encodeSnapshot(snapshot: StateSnapshot): string {
  return JSON.stringify({ version: snapshot.version, state: snapshot.state })
}

/** Reads a saved snapshot back; `E_CORRUPT` when the value is not one. */
export function decodeSnapshot(stream: string, key: Buffer, value: Buffer): StateSnapshot {
  const parsed = parseJson(key, value)
  if (!isObject(parsed) || typeof parsed['version'] !== 'number' || !Number.isSafeInteger(parsed['version']) || !('state' in parsed)) {
    throw corrupt(key, 'expected { version, state }')
  }
  return { stream, version: parsed['version'], state: parsed['state'] as Json }
}
