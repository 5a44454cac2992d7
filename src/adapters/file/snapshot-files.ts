import { createHash, randomBytes } from 'node:crypto'
import { open, readFile, readdir, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { DrError } from '../../kernel/errors.js'
import type { StateSnapshot } from '../../kernel/state-store.js'
import { hasErrorCode, syncDirectory, writeFully } from '../fs/durable-io.js'
import { decodeSnapshot, encodeSnapshot } from './journal-format.js'

const TEMP_SUFFIX = '.tmp'
const ignore = (): void => undefined

/**
 * Saved snapshots of a file journal, one file per stream in `dir`, named by a hash of the stream name. Each
 * save writes a temporary file, fsyncs it, renames it over the old one and fsyncs the directory, so a crash
 * leaves either the old snapshot or the new one. Only the newest version of a stream is kept.
 */
export class SnapshotFiles {
  readonly #dir: string
  /** Version of the saved snapshot per stream, once known (undefined: none saved). */
  readonly #versions = new Map<string, number | undefined>()
  /** The last save in progress per stream: saves of one stream run one after the other. */
  readonly #saving = new Map<string, Promise<void>>()

  constructor(dir: string) {
    this.#dir = dir
  }

  /** Deletes temporary files left by saves that a crash interrupted. */
  async removeStrayTemps(): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      if (name.endsWith(TEMP_SUFFIX)) await unlink(path.join(this.#dir, name)).catch(ignore)
    }
  }

  /** Saves `snapshot` unless a snapshot of a higher version of the same stream is already saved. */
  save(snapshot: StateSnapshot): Promise<void> {
    const previous = this.#saving.get(snapshot.stream) ?? Promise.resolve()
    const saved = previous.then(() => this.#write(snapshot))
    const tail = saved.then(ignore, ignore)
    this.#saving.set(snapshot.stream, tail)
    void tail.then(() => {
      if (this.#saving.get(snapshot.stream) === tail) this.#saving.delete(snapshot.stream)
    })
    return saved
  }

  /** The saved snapshot of `stream` (after any save of it in progress); `E_CORRUPT` when its file is damaged. */
  async load(stream: string): Promise<StateSnapshot | undefined> {
    await this.#saving.get(stream)
    return this.#read(stream)
  }

  async #read(stream: string): Promise<StateSnapshot | undefined> {
    const file = this.#fileOf(stream)
    let bytes: Buffer
    try {
      bytes = await readFile(file)
    } catch (error) {
      if (!hasErrorCode(error, 'ENOENT')) throw error
      this.#versions.set(stream, undefined)
      return undefined
    }
    const snapshot = decodeSnapshot(bytes)
    if (snapshot === undefined || snapshot.stream !== stream) {
      throw new DrError('E_CORRUPT', `snapshot file ${file} of stream "${stream}" is damaged`, { file, stream })
    }
    this.#versions.set(stream, snapshot.version)
    return snapshot
  }

  /** Resolves when every save started so far has finished. */
  async settled(): Promise<void> {
    await Promise.all(this.#saving.values())
  }

  async #write(snapshot: StateSnapshot): Promise<void> {
    const existing = await this.#savedVersion(snapshot.stream)
    if (existing !== undefined && existing > snapshot.version) return
    const file = this.#fileOf(snapshot.stream)
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`
    const handle = await open(temp, 'wx')
    try {
      await writeFully(handle, encodeSnapshot(snapshot), 0)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await rename(temp, file)
    } catch (error) {
      await unlink(temp).catch(ignore)
      throw error
    }
    await syncDirectory(this.#dir)
    this.#versions.set(snapshot.stream, snapshot.version)
  }

  /** Version of the saved snapshot of `stream`; a damaged one counts as none, so that a new save replaces it. */
  async #savedVersion(stream: string): Promise<number | undefined> {
    if (this.#versions.has(stream)) return this.#versions.get(stream)
    try {
      return (await this.#read(stream))?.version
    } catch (error) {
      if (error instanceof DrError && error.code === 'E_CORRUPT') return undefined
      throw error
    }
  }

  #fileOf(stream: string): string {
    return path.join(this.#dir, `${createHash('sha256').update(stream, 'utf8').digest('hex')}.snapshot`)
  }
}
