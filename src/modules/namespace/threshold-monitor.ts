import { callAdapter, toDrError } from '../../kernel/errors.js'
import type { VolumeInfo } from '../../ports/storage.js'
import type { NamespaceRuntime } from './runtime.js'
import { thresholdTransition, usedPercent, type ThresholdRecord } from './thresholds.js'

/**
 * Evaluates the threshold monitors on their own intervals: reads the volumes a threshold covers, raises
 * `namespace.outOfSpace` (with the threshold's severity) when a volume's used space goes strictly above the
 * limit, and `namespace.spaceRecovered` when it comes back. Each crossing raises one event, not one per reading.
 *
 * @public
 */
export class ThresholdMonitor {
  readonly #rt: NamespaceRuntime
  readonly #due = new Map<string, number>()
  readonly #exceeded = new Set<string>()

  constructor(rt: NamespaceRuntime) {
    this.#rt = rt
  }

  /** When the next threshold is due (undefined when there are none). */
  nextDue(): number | undefined {
    let next: number | undefined
    for (const threshold of Object.values(this.#rt.catalog.state.thresholds)) {
      const due = this.#due.get(threshold.name) ?? this.#rt.clock.now()
      if (next === undefined || due < next) next = due
    }
    return next
  }

  /** Evaluates every threshold that is due now. */
  async runDue(): Promise<void> {
    const now = this.#rt.clock.now()
    const thresholds = Object.values(this.#rt.catalog.state.thresholds)
    const known = new Set(thresholds.map((threshold) => threshold.name))
    for (const name of [...this.#due.keys()]) if (!known.has(name)) this.#due.delete(name)
    for (const threshold of thresholds) {
      if ((this.#due.get(threshold.name) ?? now) > now) continue
      this.#due.set(threshold.name, now + threshold.everyMs)
      await this.#evaluate(threshold)
    }
  }

  async #evaluate(threshold: ThresholdRecord): Promise<void> {
    let volumes: readonly VolumeInfo[]
    try {
      const storage = this.#rt.storage(threshold.site)
      const volume = threshold.volume
      volumes =
        volume === null
          ? await callAdapter(storage.kind, 'listVolumes', () => storage.listVolumes())
          : [await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(volume))]
    } catch (error) {
      const failure = toDrError(error)
      this.#rt.log.emit('namespace.thresholdFailed', 'warning', { threshold: threshold.name, site: threshold.site, code: failure.code, message: failure.message })
      return
    }
    for (const volume of volumes) {
      const key = `${threshold.name}|${threshold.site}|${volume.name}`
      const reading = usedPercent(volume)
      const payload = { threshold: threshold.name, site: threshold.site, volume: volume.name, usedPercent: Math.round(reading * 100) / 100, above: threshold.above }
      switch (thresholdTransition(threshold, reading, this.#exceeded.has(key))) {
        case 'exceeded':
          this.#exceeded.add(key)
          this.#rt.log.emit('namespace.outOfSpace', threshold.severity, payload)
          break
        case 'recovered':
          this.#exceeded.delete(key)
          this.#rt.log.emit('namespace.spaceRecovered', 'info', payload)
          break
        case 'unchanged':
          break
      }
    }
  }
}
