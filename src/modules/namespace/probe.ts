import type { Clock } from '../../kernel/clock.js'
import type { StoragePort } from '../../ports/storage.js'
import type { ProbeFailure } from './events.js'

/**
 * What one share-level probe found: the share answered as required, or why not.
 *
 * @public
 */
export type ProbeOutcome = { readonly ok: true } | { readonly ok: false; readonly failure: ProbeFailure; readonly detail: string }

const TIMED_OUT = Symbol('timed out')
const STILL_WAITING = Symbol('still waiting')

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The share-level probes of one coordinator. A storage call that does not answer within the probe timeout fails
 * the probe, but the port cannot cancel it: it stays outstanding until the adapter settles it. While it does, a
 * later probe of the same share (or volume) does not call the adapter again and fails at once as a timeout. So a
 * hung file server costs one outstanding call per share, however many passes run, and the probe concurrency bound
 * holds at the adapter.
 *
 * @public
 */
export class Prober {
  readonly #clock: Clock
  readonly #outstanding = new Set<string>()

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** Storage calls of probes that have not settled yet (timed-out ones included). */
  get outstanding(): number {
    return this.#outstanding.size
  }

  /**
   * Probes a primary share at the share level: it must exist, its volume must be online and it must open with
   * the policy's rights, within `timeoutMs`. A probe that does not answer in time fails with `timeout`; one whose
   * storage adapter rejects, or whose site has no adapter, fails with `unreachable`.
   */
  async primary(storage: () => StoragePort, site: string, share: string, access: readonly ('read' | 'write')[], timeoutMs: number): Promise<ProbeOutcome> {
    try {
      const port = storage()
      const result = await this.#call(`share:${site}/${share}`, timeoutMs, () => port.probeShare(share, access))
      if (result === TIMED_OUT) return { ok: false, failure: 'timeout', detail: `share "${share}" did not answer within ${timeoutMs} ms` }
      if (result === STILL_WAITING) return { ok: false, failure: 'timeout', detail: `the previous probe of share "${share}" has not answered yet` }
      if (result.state === 'online') return { ok: true }
      return { ok: false, failure: result.state, detail: result.detail ?? `share "${share}" is ${result.state}` }
    } catch (error) {
      return { ok: false, failure: 'unreachable', detail: message(error) }
    }
  }

  /**
   * Heartbeats a destination share: when it exists it must be online and readable; when it does not exist yet
   * (it is created at failover), the mirror's destination volume must be online, since that is where it will be
   * created. `volumes` shares the volume checks of one pass, so many missing shares on one volume cost one call.
   */
  async destination(
    storage: () => StoragePort,
    site: string,
    share: string,
    volume: string,
    timeoutMs: number,
    volumes: Map<string, Promise<ProbeOutcome>> = new Map(),
  ): Promise<ProbeOutcome> {
    const shareOutcome = await this.primary(storage, site, share, ['read'], timeoutMs)
    if (shareOutcome.ok || shareOutcome.failure !== 'deleted') return shareOutcome
    const key = `volume:${site}/${volume}`
    let outcome = volumes.get(key)
    if (outcome === undefined) {
      outcome = this.#volume(storage, key, volume, timeoutMs)
      volumes.set(key, outcome)
    }
    return outcome
  }

  async #volume(storage: () => StoragePort, key: string, volume: string, timeoutMs: number): Promise<ProbeOutcome> {
    try {
      const port = storage()
      const info = await this.#call(key, timeoutMs, () => port.volumeInfo(volume))
      if (info === TIMED_OUT || info === STILL_WAITING) return { ok: false, failure: 'timeout', detail: `volume "${volume}" did not answer within ${timeoutMs} ms` }
      return info.online ? { ok: true } : { ok: false, failure: 'offline', detail: `destination volume "${volume}" is offline` }
    } catch (error) {
      return { ok: false, failure: 'deleted', detail: message(error) }
    }
  }

  /** Runs `call` unless one for `key` is still outstanding, and waits for it at most `ms`. */
  #call<T>(key: string, ms: number, call: () => Promise<T>): Promise<T | typeof TIMED_OUT | typeof STILL_WAITING> {
    if (this.#outstanding.has(key)) return Promise.resolve(STILL_WAITING)
    let started: Promise<T>
    try {
      started = call()
    } catch (error) {
      return Promise.reject(error)
    }
    this.#outstanding.add(key)
    const work = started.finally(() => this.#outstanding.delete(key))
    return new Promise<T | typeof TIMED_OUT>((resolve, reject) => {
      const cancel = this.#clock.setTimer(ms, () => resolve(TIMED_OUT))
      work.then(
        (value) => {
          cancel()
          resolve(value)
        },
        (error: unknown) => {
          cancel()
          reject(error)
        },
      )
    })
  }
}
