import * as t from 'io-ts'
import { isRight } from 'fp-ts/lib/Either.js'
import { JsonValue } from '../../kernel/codecs.js'
import type { BlockEntry } from './block-map.js'
import { corruptFile } from './frames.js'

const Access = t.readonlyArray(t.keyof({ read: null, write: null }))

/** Codec of a share as the local adapter persists it. */
export const ShareRecord = t.readonly(
  t.type({
    name: t.string,
    volume: t.string,
    path: t.string,
    protocol: t.keyof({ smb: null, nfs: null }),
    access: Access,
    createdAt: t.number,
  }),
)

const op = <O extends string, P extends t.Props>(name: O, props: P) => t.type({ op: t.literal(name), ...props })

/**
 * Codec of every metadata change except block writes: one entry of the write-ahead log. Replaying these in
 * order on top of a checkpoint rebuilds the pool exactly.
 */
export const MetaRecord = t.union([
  op('token', { scope: t.string, value: t.number }),
  op('createVolume', { name: t.string, sizeBytes: t.number, blockSize: t.number, createdAt: t.number }),
  op('deleteVolume', { name: t.string }),
  op('resizeVolume', { name: t.string, sizeBytes: t.number }),
  op('setOnline', { name: t.string, online: t.boolean }),
  op('setWritable', { name: t.string, writable: t.boolean }),
  op('trim', { volume: t.string, first: t.number, end: t.number }),
  op('createSnapshot', { volume: t.string, name: t.string, createdAt: t.number, labels: t.record(t.string, t.string) }),
  op('deleteSnapshot', { volume: t.string, name: t.string }),
  op('restoreSnapshot', { volume: t.string, name: t.string }),
  op('cloneSnapshot', { volume: t.string, name: t.string, clone: t.string, createdAt: t.number }),
  op('holdSnapshot', { volume: t.string, name: t.string, tag: t.string }),
  op('releaseSnapshot', { volume: t.string, name: t.string, tag: t.string }),
  op('createShare', { share: ShareRecord }),
  op('deleteShare', { name: t.string }),
  op('setShareAccess', { name: t.string, access: Access }),
  op('putConfig', { volume: t.string, key: t.string, value: JsonValue }),
  op('deleteConfig', { volume: t.string, key: t.string }),
])

/** A metadata change other than a block write. */
export type MetaRecord = t.TypeOf<typeof MetaRecord>

/** A block write: the volume and, for each block written, its new slot and checksum. */
export interface WriteRecord {
  readonly op: 'write'
  readonly volume: string
  readonly entries: readonly BlockEntry[]
}

/** One entry of the write-ahead log. */
export type LogRecord = MetaRecord | WriteRecord

const KIND_META = 1
const KIND_WRITE = 2
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes a record as `[kind u8][length u32][payload]`: JSON for metadata, packed integers for writes. */
export function encodeRecord(record: LogRecord): Uint8Array {
  let payload: Uint8Array
  let kind: number
  if (record.op === 'write') {
    kind = KIND_WRITE
    const name = encoder.encode(record.volume)
    payload = new Uint8Array(2 + name.length + 4 + 12 * record.entries.length)
    const view = new DataView(payload.buffer)
    view.setUint16(0, name.length, true)
    payload.set(name, 2)
    let at = 2 + name.length
    view.setUint32(at, record.entries.length, true)
    at += 4
    for (const entry of record.entries) {
      view.setUint32(at, entry.block, true)
      view.setUint32(at + 4, entry.slot, true)
      view.setUint32(at + 8, entry.crc, true)
      at += 12
    }
  } else {
    kind = KIND_META
    payload = encoder.encode(JSON.stringify(MetaRecord.encode(record)))
  }
  const out = new Uint8Array(5 + payload.length)
  out[0] = kind
  new DataView(out.buffer).setUint32(1, payload.length, true)
  out.set(payload, 5)
  return out
}

/** Parses stored JSON and checks it with `codec`; `E_CORRUPT` naming `file` and `what` otherwise. */
export function decodeJson<A, O>(codec: t.Type<A, O, unknown>, bytes: Uint8Array, file: string, what: string): A {
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch {
    throw corruptFile(file, `unreadable ${what}`)
  }
  const decoded = codec.decode(json)
  if (!isRight(decoded)) throw corruptFile(file, `${what} does not match its codec`)
  return decoded.right
}

/** Decodes the records of one log batch (a frame body), checking every JSON record with its codec. */
export function decodeRecords(body: Uint8Array, file: string): LogRecord[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  const records: LogRecord[] = []
  let at = 0
  while (at < body.length) {
    if (at + 5 > body.length) throw corruptFile(file, 'truncated record header')
    const kind = body[at]
    const length = view.getUint32(at + 1, true)
    const start = at + 5
    if (start + length > body.length) throw corruptFile(file, 'record longer than its batch')
    const payload = body.subarray(start, start + length)
    records.push(kind === KIND_WRITE ? decodeWrite(payload, file) : decodeMeta(kind, payload, file))
    at = start + length
  }
  return records
}

function decodeMeta(kind: number | undefined, payload: Uint8Array, file: string): MetaRecord {
  if (kind !== KIND_META) throw corruptFile(file, `unknown record kind ${String(kind)}`)
  return decodeJson(MetaRecord, payload, file, 'record')
}

function decodeWrite(payload: Uint8Array, file: string): WriteRecord {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  if (payload.length < 6) throw corruptFile(file, 'short write record')
  const nameLength = view.getUint16(0, true)
  if (payload.length < 6 + nameLength) throw corruptFile(file, 'short write record')
  let volume: string
  try {
    volume = decoder.decode(payload.subarray(2, 2 + nameLength))
  } catch {
    throw corruptFile(file, 'unreadable volume name')
  }
  let at = 2 + nameLength
  const count = view.getUint32(at, true)
  at += 4
  if (payload.length !== at + 12 * count) throw corruptFile(file, 'write record length mismatch')
  const entries: BlockEntry[] = []
  for (let i = 0; i < count; i++, at += 12) {
    entries.push({ block: view.getUint32(at, true), slot: view.getUint32(at + 4, true), crc: view.getUint32(at + 8, true) })
  }
  return { op: 'write', volume, entries }
}
