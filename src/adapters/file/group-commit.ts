import type { FileHandle } from 'node:fs/promises'
import { DrError } from '../../kernel/errors.js'
import { writeFully } from '../fs/durable-io.js'

/**
 * When the file journal forces appended bytes to disk: `group` (default) makes every append durable before it
 * resolves, batching the appends that arrive while a write+fsync is in flight into the next one; `always` does
 * one write+fsync per append (slower, the benchmark baseline); `never` leaves flushing to the OS (tests, bulk
 * loads) — an append then resolves once written, and survives a process crash but not a power loss.
 *
 * @public
 */
export type FsyncMode = 'group' | 'always' | 'never'

/** Counters of what the committer did, for tests and benchmarks. */
export interface CommitStats {
  /** Write batches (one write+fsync each; a batch may take several write calls). */
  readonly writes: number
  /** fdatasync calls made for appends. */
  readonly fsyncs: number
  /** Bytes appended. */
  readonly bytes: number
}

interface Pending {
  readonly bytes: Buffer
  readonly onDurable: (offset: number) => void
  readonly resolve: () => void
  readonly reject: (error: DrError) => void
}

/** The most bytes gathered into one write. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024

const ignore = (): void => undefined

/**
 * Appends byte blocks at the end of a file, in submission order, with group commit. Each block's `onDurable`
 * runs (in order, synchronously, before its promise resolves) once its bytes are written and, unless the mode
 * is `never`, fsynced. After a failed write or fsync the file's tail is unknown, so the committer refuses all
 * further work: reopening the journal recovers it.
 */
export class GroupCommitter {
  readonly #handle: FileHandle
  readonly #mode: FsyncMode
  readonly #file: string
  #end: number
  #queue: Pending[] = []
  #running = false
  #failure: DrError | undefined
  #settled: Promise<void> = Promise.resolve()
  #writes = 0
  #fsyncs = 0
  #bytes = 0

  constructor(handle: FileHandle, end: number, mode: FsyncMode, file: string) {
    this.#handle = handle
    this.#end = end
    this.#mode = mode
    this.#file = file
  }

  /** The error that stopped the committer, if one did. */
  get failure(): DrError | undefined {
    return this.#failure
  }

  /** Counters so far. */
  get stats(): CommitStats {
    return { writes: this.#writes, fsyncs: this.#fsyncs, bytes: this.#bytes }
  }

  /** Queues `bytes` for the end of the file; resolves once they are durable (after `onDurable` ran). */
  submit(bytes: Buffer, onDurable: (offset: number) => void): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    const done = new Promise<void>((resolve, reject) => {
      this.#queue.push({ bytes, onDurable, resolve, reject })
    })
    this.#settled = done.then(ignore, ignore)
    if (!this.#running) {
      this.#running = true
      // Start on the next microtask, so appends issued together in this tick share the first write.
      queueMicrotask(() => void this.#run())
    }
    return done
  }

  /** Resolves when every block submitted so far has become durable or failed. */
  settled(): Promise<void> {
    return this.#settled
  }

  async #run(): Promise<void> {
    let batch: Pending[] = []
    try {
      while (this.#queue.length > 0) {
        batch = this.#takeBatch()
        const start = this.#end
        const bytes = batch.length === 1 ? (batch[0] as Pending).bytes : Buffer.concat(batch.map((pending) => pending.bytes))
        await writeFully(this.#handle, bytes, start)
        this.#writes++
        if (this.#mode !== 'never') {
          await this.#handle.datasync()
          this.#fsyncs++
        }
        this.#end = start + bytes.length
        this.#bytes += bytes.length
        let offset = start
        for (const pending of batch) {
          pending.onDurable(offset)
          offset += pending.bytes.length
          pending.resolve()
        }
        batch = []
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      this.#failure = new DrError(
        'E_ADAPTER',
        `file.append failed: ${reason} (journal ${this.#file}); reopen the journal to recover`,
        { adapter: 'file', operation: 'append', file: this.#file },
        { cause: error },
      )
      for (const pending of [...batch, ...this.#queue]) pending.reject(this.#failure)
      this.#queue = []
    } finally {
      this.#running = false
    }
  }

  #takeBatch(): Pending[] {
    if (this.#mode === 'always') return this.#queue.splice(0, 1)
    let count = 0
    let bytes = 0
    for (const pending of this.#queue) {
      if (count > 0 && bytes + pending.bytes.length > MAX_BATCH_BYTES) break
      bytes += pending.bytes.length
      count++
    }
    return this.#queue.splice(0, count)
  }
}
