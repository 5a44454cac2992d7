import * as t from 'io-ts'
import { Duration, Name } from '../../kernel/codecs.js'
import type { Severity } from '../../kernel/events.js'
import type { VolumeInfo } from '../../ports/storage.js'

const SeverityCodec = t.union([t.literal('info'), t.literal('warning'), t.literal('error'), t.literal('critical')])
const Percent = t.refinement(t.number, (n) => Number.isFinite(n) && n >= 0 && n <= 100, 'Percent (0..100)')
const Every = t.refinement(Duration, (ms) => ms >= 10 && ms <= 86_400_000, 'ThresholdInterval (10ms..1d)')

/**
 * Options of `namespace.addThreshold`: a unique name, the site (and optionally one volume; default every volume
 * of the site), the metric (`usedPercent`: allocated bytes over size), the limit it must strictly exceed, the
 * severity of the event it raises and how often it is checked (default 60 s).
 *
 * @public
 */
export const AddThresholdInput = t.intersection(
  [
    t.type({ name: Name, site: Name, metric: t.literal('usedPercent'), above: Percent, severity: SeverityCodec }),
    t.partial({ volume: Name, every: Every }),
  ],
  'AddThresholdOptions',
)

/**
 * What `namespace.addThreshold` takes.
 *
 * @public
 */
export type AddThresholdOptions = t.OutputOf<typeof AddThresholdInput>

/**
 * A threshold monitor as stored.
 *
 * @public
 */
export const ThresholdRecordCodec = t.type(
  {
    name: t.string,
    site: t.string,
    volume: t.union([t.string, t.null]),
    metric: t.literal('usedPercent'),
    above: t.number,
    severity: SeverityCodec,
    everyMs: t.number,
  },
  'ThresholdRecord',
)

/**
 * A stored threshold monitor.
 *
 * @public
 */
export type ThresholdRecord = t.TypeOf<typeof ThresholdRecordCodec>

/**
 * How often a threshold is checked when its options do not say.
 *
 * @public
 */
export const DEFAULT_THRESHOLD_EVERY_MS = 60_000

/**
 * The percentage of a volume's size that is allocated, as the `usedPercent` metric reads it.
 *
 * @public
 */
export function usedPercent(volume: Pick<VolumeInfo, 'sizeBytes' | 'allocatedBytes'>): number {
  return volume.sizeBytes === 0 ? 0 : (volume.allocatedBytes / volume.sizeBytes) * 100
}

/**
 * What one reading of a threshold means, given whether it was already exceeded: `exceeded` (it crosses the
 * limit now: raise the event), `recovered` (it went back to or below the limit), or `unchanged`. The limit is
 * strict: a reading equal to `above` is not exceeded.
 *
 * @public
 */
export function thresholdTransition(threshold: Pick<ThresholdRecord, 'above'>, reading: number, wasExceeded: boolean): 'exceeded' | 'recovered' | 'unchanged' {
  const exceeded = reading > threshold.above
  if (exceeded && !wasExceeded) return 'exceeded'
  if (!exceeded && wasExceeded) return 'recovered'
  return 'unchanged'
}

/**
 * The severity codec of threshold events.
 *
 * @public
 */
export const ThresholdSeverity: t.Type<Severity, Severity, unknown> = SeverityCodec
