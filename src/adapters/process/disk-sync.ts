import { chmod, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StoragePort } from '../../ports/storage.js'
import { hasErrorCode } from '../fs/durable-io.js'
import { IMAGE_HEADER_BYTES, decodeImageBody, decodeImageHeader, encodeImage, imageBytes, type DirImage, type ImageEntry } from './dir-image.js'

/**
 * Ties a guest's directory to the block volume that is its disk (a VM disk or a mounted volume of a process host
 * with `disks`): `materialise` makes the directory hold exactly what the volume holds, `flush` stores what the
 * directory holds into the volume (see `dir-image.ts` for the format). Files are rewritten in place, so a process
 * that keeps a file open reads what was materialised.
 */
export class DiskSync {
  readonly #storage: StoragePort

  constructor(storage: StoragePort) {
    this.#storage = storage
  }

  /** Makes `dir` hold what `volume` holds: its directories and files (in place), nothing else. */
  async materialise(volume: string, dir: string): Promise<void> {
    const image = await this.#read(volume)
    await mkdir(dir, { recursive: true })
    const wanted = new Map(image.entries.map((entry) => [entry.path, entry.kind]))
    for (const entry of await walk(dir)) {
      if (wanted.get(entry.path) !== entry.kind) await rm(path.join(dir, entry.path), { recursive: true, force: true })
    }
    for (const entry of image.entries) {
      const target = path.join(dir, entry.path)
      if (entry.kind === 'dir') await mkdir(target, { recursive: true })
      else await writeFile(target, image.files.get(entry.path) ?? new Uint8Array(0))
      await chmod(target, entry.mode)
    }
  }

  /**
   * Stores what `dir` holds into `volume`: only the blocks that differ from what the volume holds are written,
   * and what an older, longer image left beyond the new one is trimmed. `E_PRECONDITION` when it does not fit.
   */
  async flush(volume: string, dir: string, token: FenceToken): Promise<void> {
    const entries: ImageEntry[] = []
    const files = new Map<string, Uint8Array>()
    for (const entry of await walk(dir)) {
      if (entry.kind === 'dir') {
        entries.push(entry)
        continue
      }
      const bytes = await readFile(path.join(dir, entry.path)).catch((error: unknown) => (hasErrorCode(error, 'ENOENT') ? undefined : Promise.reject(error)))
      if (bytes === undefined) continue
      files.set(entry.path, bytes)
      entries.push({ ...entry, size: bytes.length })
    }
    const next = encodeImage({ entries, files })
    const info = await callAdapter(this.#storage.kind, 'volumeInfo', () => this.#storage.volumeInfo(volume))
    if (next.length > info.sizeBytes) {
      throw new DrError('E_PRECONDITION', `process host: the directory of volume "${volume}" needs ${next.length} bytes; the volume has ${info.sizeBytes}`, {
        adapter: 'process',
        volume,
        needed: next.length,
        sizeBytes: info.sizeBytes,
      })
    }
    const block = info.blockSize
    const previous = await this.#header(volume).then(imageBytes, () => info.sizeBytes)
    const span = Math.min(info.sizeBytes, Math.ceil(Math.max(next.length, 1) / block) * block)
    const current = await this.#call('read', () => this.#storage.read(volume, 0, span))
    const padded = new Uint8Array(span)
    padded.set(next)
    for (const run of changedRuns(current, padded, block)) {
      await this.#call('write', () => this.#storage.write(volume, run.offset, padded.subarray(run.offset, run.offset + run.length), token))
    }
    const tail = Math.min(info.sizeBytes, Math.ceil(previous / block) * block)
    if (tail > span) await this.#call('trim', () => this.#storage.trim(volume, span, tail - span, token))
  }

  async #header(volume: string) {
    return decodeImageHeader(volume, await this.#call('read', () => this.#storage.read(volume, 0, IMAGE_HEADER_BYTES)))
  }

  async #read(volume: string): Promise<DirImage> {
    const header = await this.#header(volume)
    if (header.empty) return { entries: [], files: new Map() }
    const body = await this.#call('read', () => this.#storage.read(volume, IMAGE_HEADER_BYTES, imageBytes(header) - IMAGE_HEADER_BYTES))
    return decodeImageBody(volume, header, body)
  }

  #call<R>(operation: string, run: () => Promise<R>): Promise<R> {
    return callAdapter(this.#storage.kind, operation, run)
  }
}

/** Every directory and regular file under `dir` (not `dir` itself), by path relative to it; other kinds are skipped. */
async function walk(dir: string, prefix = ''): Promise<ImageEntry[]> {
  let names: string[]
  try {
    names = await readdir(path.join(dir, prefix))
  } catch (error) {
    if (hasErrorCode(error, 'ENOENT')) return []
    throw error
  }
  const entries: ImageEntry[] = []
  for (const name of names.sort()) {
    const relative = prefix === '' ? name : `${prefix}/${name}`
    const stats = await lstat(path.join(dir, relative))
    if (stats.isDirectory()) {
      entries.push({ path: relative, kind: 'dir', mode: stats.mode & 0o7777, size: 0 })
      entries.push(...(await walk(dir, relative)))
    } else if (stats.isFile()) {
      entries.push({ path: relative, kind: 'file', mode: stats.mode & 0o7777, size: stats.size })
    }
  }
  return entries
}

/** The runs of whole blocks in which `after` differs from `before` (equal lengths, a multiple of `block`). */
function changedRuns(before: Uint8Array, after: Uint8Array, block: number): Array<{ offset: number; length: number }> {
  const runs: Array<{ offset: number; length: number }> = []
  for (let offset = 0; offset < after.length; offset += block) {
    const end = Math.min(after.length, offset + block)
    let same = true
    for (let i = offset; i < end && same; i++) same = before[i] === after[i]
    if (same) continue
    const last = runs[runs.length - 1]
    if (last !== undefined && last.offset + last.length === offset) last.length += end - offset
    else runs.push({ offset, length: end - offset })
  }
  return runs
}
