import type { Clock } from '../../kernel/clock.js'
import type { StoragePort } from '../../ports/storage.js'
import type { ProbeFailure } from './events.js'

/**
 * What one share-level probe found: the share answered as required, or why not.
 *
 * @public
 */
export type ProbeOutcome = { readonly ok: true } | { readonly ok: false; readonly failure: ProbeFailure; readonly detail: string }

const TIMED_OUT = Symbol('timeout')

function within<T>(work: Promise<T>, ms: number, clock: Clock): Promise<T | typeof TIMED_OUT> {
  return new Promise<T | typeof TIMED_OUT>((resolve, reject) => {
    const cancel = clock.setTimer(ms, () => resolve(TIMED_OUT))
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

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * Probes a primary share at the share level: it must exist, its volume must be online and it must open with the
 * policy's rights, within `timeoutMs`. A probe that does not answer in time fails with `timeout`; one whose
 * storage adapter rejects (the file server or its agent is down) fails with `unreachable`.
 *
 * @public
 */
export async function probePrimary(storage: StoragePort, share: string, access: readonly ('read' | 'write')[], timeoutMs: number, clock: Clock): Promise<ProbeOutcome> {
  try {
    const result = await within(storage.probeShare(share, access), timeoutMs, clock)
    if (result === TIMED_OUT) return { ok: false, failure: 'timeout', detail: `share "${share}" did not answer within ${timeoutMs} ms` }
    if (result.state === 'online') return { ok: true }
    return { ok: false, failure: result.state, detail: result.detail ?? `share "${share}" is ${result.state}` }
  } catch (error) {
    return { ok: false, failure: 'unreachable', detail: message(error) }
  }
}

/**
 * Heartbeats a destination share: when it exists it must be online and readable; when it does not exist yet
 * (it is created at failover), the mirror's destination volume must be online, since that is where it will be
 * created.
 *
 * @public
 */
export async function probeDestination(storage: StoragePort, share: string, volume: string, timeoutMs: number, clock: Clock): Promise<ProbeOutcome> {
  const shareOutcome = await probePrimary(storage, share, ['read'], timeoutMs, clock)
  if (shareOutcome.ok || shareOutcome.failure !== 'deleted') return shareOutcome
  try {
    const info = await within(storage.volumeInfo(volume), timeoutMs, clock)
    if (info === TIMED_OUT) return { ok: false, failure: 'timeout', detail: `volume "${volume}" did not answer within ${timeoutMs} ms` }
    return info.online ? { ok: true } : { ok: false, failure: 'offline', detail: `destination volume "${volume}" is offline` }
  } catch (error) {
    return { ok: false, failure: 'deleted', detail: message(error) }
  }
}
