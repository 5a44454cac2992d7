import type { Clock } from '../../kernel/clock.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import { MEMORY_KIND, storageError } from './storage-inputs.js'
import type { VolumeState } from './storage-volume.js'

/**
 * How the memory storage runs each call: after `close` every call rejects with `E_CLOSED`; a mutating call's
 * fence token is checked against the highest seen (`E_FENCED`); every call settles after the configured latency;
 * and I/O enters its volume's fence, waiting while it is up, then checks the token and the volume again.
 */
export class MemoryCalls {
  readonly #clock: Clock
  readonly #latency: () => number
  readonly #volumes: ReadonlyMap<string, VolumeState>
  readonly #guard = new FenceGuard(MEMORY_KIND)
  #closed = false

  constructor(clock: Clock, latency: () => number, volumes: ReadonlyMap<string, VolumeState>) {
    this.#clock = clock
    this.#latency = latency
    this.#volumes = volumes
  }

  /** Makes every later call reject with `E_CLOSED`; false if it was already closed. */
  close(): boolean {
    if (this.#closed) return false
    this.#closed = true
    return true
  }

  /** Runs a call that does not wait for fences: closed check, token check, body, then the latency. */
  async op<R>(operation: string, token: FenceToken | undefined, body: (operation: string) => R | Promise<R>): Promise<R> {
    try {
      this.#admit(operation, token)
      return await body(operation)
    } finally {
      await this.#pause()
    }
  }

  /** Decodes a call's input before it goes on with `run`; bad input is rejected at once, after the latency. */
  async decoded<I, R>(operation: string, decode: (operation: string) => I, run: (input: I) => Promise<R>): Promise<R> {
    let input: I
    try {
      this.#admit(operation, undefined)
      input = decode(operation)
    } catch (error) {
      await this.#pause()
      throw error
    }
    return run(input)
  }

  /**
   * Runs one I/O. Arrival checks run at once; the I/O then enters the volume's fence (waiting while it is up) and
   * takes effect as soon as it is admitted, after checking again what may have changed while it waited.
   */
  async io<R>(operation: string, name: string, token: FenceToken | undefined, act: (operation: string, volume: VolumeState) => R): Promise<R> {
    let volume: VolumeState
    try {
      this.#admit(operation, token)
      volume = this.volume(operation, name)
    } catch (error) {
      await this.#pause()
      throw error
    }
    await volume.gate.enter()
    try {
      this.#admit(operation, token)
      if (this.#volumes.get(name) !== volume) throw storageError('E_NOT_FOUND', operation, `volume "${name}" was deleted`, { volume: name })
      return act(operation, volume)
    } finally {
      await this.#pause()
      volume.gate.leave()
    }
  }

  /** Volume `name`, or `E_NOT_FOUND`. */
  volume(operation: string, name: string): VolumeState {
    const volume = this.#volumes.get(name)
    if (volume === undefined) throw storageError('E_NOT_FOUND', operation, `volume "${name}" does not exist`, { volume: name })
    return volume
  }

  #admit(operation: string, token: FenceToken | undefined): void {
    if (this.#closed) throw storageError('E_CLOSED', operation, 'the storage is closed')
    if (token !== undefined) this.#guard.check(token, operation)
  }

  async #pause(): Promise<void> {
    const ms = this.#latency()
    if (ms > 0) await this.#clock.sleep(ms)
  }
}
