import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import { crc32 } from '../../kernel/crc32.js'

/**
 * How a process host keeps a guest's directory in a block volume: a 32-byte header (magic `DRKITDIR`, version,
 * length and CRC-32 of a JSON manifest, length and CRC-32 of the file data), the manifest (every directory and
 * file under the root, sorted by path, with its mode and size), then the files' bytes in manifest order. A volume
 * that reads as zeros holds an empty directory.
 */
const MAGIC = 'DRKITDIR'
const VERSION = 1

/** Bytes of the header of a directory image. */
export const IMAGE_HEADER_BYTES = 32

/** One directory or file of a directory image: its path relative to the root (POSIX separators), mode and size. */
export interface ImageEntry {
  readonly path: string
  readonly kind: 'dir' | 'file'
  readonly mode: number
  readonly size: number
}

const ManifestCodec = t.array(
  t.type({ path: t.string, kind: t.union([t.literal('dir'), t.literal('file')]), mode: t.number, size: t.number }),
  'DirImageManifest',
)

/** A decoded directory image: its entries and, per file, its bytes. */
export interface DirImage {
  readonly entries: readonly ImageEntry[]
  readonly files: ReadonlyMap<string, Uint8Array>
}

/** What the header of a volume says: nothing stored yet, or the lengths of the manifest and data that follow. */
export type ImageHeader = { readonly empty: true } | { readonly empty: false; readonly manifestBytes: number; readonly manifestCrc: number; readonly dataBytes: number; readonly dataCrc: number }

function corrupt(volume: string, reason: string): DrError {
  return new DrError('E_CORRUPT', `process host: volume "${volume}" does not hold a directory image: ${reason}`, { adapter: 'process', volume })
}

/** Reads an image header; `E_CORRUPT` when the bytes are neither zeros nor a header of this format. */
export function decodeImageHeader(volume: string, bytes: Uint8Array): ImageHeader {
  if (bytes.every((byte) => byte === 0)) return { empty: true }
  if (new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) throw corrupt(volume, 'no DRKITDIR header')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(8, true) !== VERSION) throw corrupt(volume, `version ${view.getUint32(8, true)} is not ${VERSION}`)
  return { empty: false, manifestBytes: view.getUint32(12, true), manifestCrc: view.getUint32(16, true), dataBytes: view.getUint32(20, true), dataCrc: view.getUint32(24, true) }
}

/** Total bytes of the image a header describes (0 for an empty volume). */
export function imageBytes(header: ImageHeader): number {
  return header.empty ? 0 : IMAGE_HEADER_BYTES + header.manifestBytes + header.dataBytes
}

/** Decodes the manifest and data that follow `header` (`body`: exactly those bytes), checking both checksums. */
export function decodeImageBody(volume: string, header: ImageHeader, body: Uint8Array): DirImage {
  if (header.empty) return { entries: [], files: new Map() }
  const manifestBytes = body.subarray(0, header.manifestBytes)
  const data = body.subarray(header.manifestBytes, header.manifestBytes + header.dataBytes)
  if (crc32(manifestBytes) !== header.manifestCrc || crc32(data) !== header.dataCrc) throw corrupt(volume, 'a checksum does not match')
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder().decode(manifestBytes))
  } catch {
    throw corrupt(volume, 'the manifest is not JSON')
  }
  const decoded = ManifestCodec.decode(parsed)
  if (isLeft(decoded)) throw corrupt(volume, 'the manifest does not match the format')
  const files = new Map<string, Uint8Array>()
  let at = 0
  for (const entry of decoded.right) {
    if (!isRelative(entry.path)) throw corrupt(volume, `path "${entry.path}" leaves the directory`)
    if (entry.kind !== 'file') continue
    if (at + entry.size > data.length) throw corrupt(volume, `file "${entry.path}" runs past the data`)
    files.set(entry.path, data.slice(at, at + entry.size))
    at += entry.size
  }
  return { entries: decoded.right, files }
}

/** True for a path that stays inside the directory: relative, normalised, no `..` segment. */
function isRelative(entry: string): boolean {
  return entry !== '' && !entry.startsWith('/') && entry.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..')
}

/** Encodes a directory image (entries sorted by path; `files` holds the bytes of every file entry). */
export function encodeImage(image: DirImage): Uint8Array {
  const entries = [...image.entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const manifest = new TextEncoder().encode(JSON.stringify(entries))
  const chunks = entries.flatMap((entry) => (entry.kind === 'file' ? [image.files.get(entry.path) ?? new Uint8Array(0)] : []))
  const dataBytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0)
  const out = new Uint8Array(IMAGE_HEADER_BYTES + manifest.length + dataBytes)
  out.set(new TextEncoder().encode(MAGIC), 0)
  let at = IMAGE_HEADER_BYTES + manifest.length
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  out.set(manifest, IMAGE_HEADER_BYTES)
  const view = new DataView(out.buffer)
  view.setUint32(8, VERSION, true)
  view.setUint32(12, manifest.length, true)
  view.setUint32(16, crc32(manifest), true)
  view.setUint32(20, dataBytes, true)
  view.setUint32(24, crc32(out.subarray(IMAGE_HEADER_BYTES + manifest.length)), true)
  return out
}
