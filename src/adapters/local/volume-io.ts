import type { DrError } from '../../kernel/errors.js'

/** How a holder uses a volume's block maps: reading them (`shared`) or changing them (`exclusive`). */
export type LockMode = 'shared' | 'exclusive'

/** An I/O admitted through a volume's fence: `unlock` ends its use of the block maps, `leave` ends the I/O. */
export interface IoTicket {
  unlock(): void
  leave(): void
}

interface LockRequest {
  readonly mode: LockMode
  readonly grant: () => void
}

interface Deferred {
  readonly mode: LockMode
  readonly resolve: (ticket: IoTicket) => void
  readonly reject: (error: DrError) => void
}

/**
 * The I/O discipline of one volume: a FIFO reader-writer lock over its block maps (reads share it; writes,
 * trims and map changes such as restore or snapshot deletion take it alone, so no read can see a slot freed
 * under it), and the I/O fence. While fenced, new reads, writes and trims are deferred — neither run nor fail —
 * and `fence` resolves once the I/O already admitted has finished; unfencing admits the deferred I/O in
 * arrival order, straight into the lock's queue.
 */
export class VolumeIo {
  #readers = 0
  #writer = false
  #queue: LockRequest[] = []
  #fenced = false
  #inflight = 0
  #deferred: Deferred[] = []
  #drained: Array<() => void> = []

  /** True while the volume is fenced. */
  get fenced(): boolean {
    return this.#fenced
  }

  /** Takes the map lock in `mode` (queued behind earlier requests); resolves with its release. */
  lock(mode: LockMode): Promise<() => void> {
    return new Promise((resolve) => {
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        if (mode === 'exclusive') this.#writer = false
        else this.#readers--
        this.#grant()
      }
      this.#queue.push({ mode, grant: () => resolve(release) })
      this.#grant()
    })
  }

  #grant(): void {
    while (this.#queue.length > 0 && !this.#writer) {
      const next = this.#queue[0]!
      if (next.mode === 'exclusive' && this.#readers > 0) return
      this.#queue.shift()
      if (next.mode === 'exclusive') this.#writer = true
      else this.#readers++
      next.grant()
    }
  }

  /** Admits one I/O (waiting while fenced) and takes the map lock in `mode` for it. */
  enter(mode: LockMode): Promise<IoTicket> {
    if (this.#fenced) {
      return new Promise<IoTicket>((resolve, reject) => this.#deferred.push({ mode, resolve, reject }))
    }
    return this.#admit(mode)
  }

  #admit(mode: LockMode): Promise<IoTicket> {
    this.#inflight++
    return this.lock(mode).then((unlock) => {
      let left = false
      return {
        unlock,
        leave: () => {
          unlock()
          if (left) return
          left = true
          if (--this.#inflight === 0) for (const drained of this.#drained.splice(0)) drained()
        },
      }
    })
  }

  /** Fences the volume; resolves once every admitted I/O has left. The caller checks it was not fenced. */
  async fence(): Promise<void> {
    this.#fenced = true
    if (this.#inflight > 0) await new Promise<void>((resolve) => this.#drained.push(resolve))
  }

  /** Lifts the fence and admits the deferred I/O in arrival order. */
  unfence(): void {
    this.#fenced = false
    for (const deferred of this.#deferred.splice(0)) void this.#admit(deferred.mode).then(deferred.resolve)
  }

  /** Fails every deferred I/O (the volume is gone or the adapter is closing). */
  abort(error: DrError): void {
    for (const deferred of this.#deferred.splice(0)) deferred.reject(error)
  }
}
