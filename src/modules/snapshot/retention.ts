import * as t from 'io-ts'
import { Duration, PositiveInt } from '../../kernel/codecs.js'

/**
 * One row of a retention grid: keep the newest snapshot in each of the last `count` intervals of length
 * `every` (aligned to the epoch, UTC). `{ every: '1h', count: 24 }` is "hourly for a day".
 *
 * @public
 */
export interface RetentionBucket {
  readonly every: number
  readonly count: number
}

/**
 * A retention policy as a grid, as zrepl and sanoid express it: the newest `keepLast` snapshots, plus the
 * newest snapshot of each interval of each bucket row. Held snapshots and the ones callers protect (a mirror's
 * newest base) are never expired, whatever the grid says.
 *
 * @public
 */
export interface RetentionGrid {
  readonly keepLast: number
  readonly buckets: readonly RetentionBucket[]
}

/**
 * Codec for {@link RetentionGrid}; `every` accepts durations like `"1h"`, and `keepLast` must be at least 1 so
 * that retention never removes the newest snapshot.
 *
 * @public
 */
export const RetentionGridCodec = t.type(
  {
    keepLast: PositiveInt,
    buckets: t.readonlyArray(t.type({ every: Duration, count: PositiveInt })),
  },
  'RetentionGrid',
)

/**
 * What retention needs to know about a snapshot.
 *
 * @public
 */
export interface RetentionCandidate {
  readonly name: string
  readonly createdAt: number
  /** Held (replication base, restart point) or otherwise protected: never expired. */
  readonly protected: boolean
}

function newestFirst(a: RetentionCandidate, b: RetentionCandidate): number {
  return b.createdAt - a.createdAt || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0)
}

/**
 * Decides which snapshots a grid keeps at time `now`. Pure; the result lists the names to expire, oldest first.
 * Snapshots from the future (clock skew) are kept.
 *
 * @public
 */
export function selectExpired(candidates: readonly RetentionCandidate[], grid: RetentionGrid, now: number): readonly string[] {
  const sorted = [...candidates].sort(newestFirst)
  const kept = new Set<string>(sorted.slice(0, grid.keepLast).map((c) => c.name))
  for (const bucket of grid.buckets) {
    const currentStart = Math.floor(now / bucket.every) * bucket.every
    const oldestStart = currentStart - (bucket.count - 1) * bucket.every
    const seenIntervals = new Set<number>()
    for (const candidate of sorted) {
      if (candidate.createdAt < oldestStart || candidate.createdAt >= currentStart + bucket.every) continue
      const interval = Math.floor(candidate.createdAt / bucket.every)
      if (seenIntervals.has(interval)) continue
      seenIntervals.add(interval)
      kept.add(candidate.name)
    }
  }
  return sorted
    .filter((c) => !kept.has(c.name) && !c.protected && c.createdAt <= now)
    .map((c) => c.name)
    .reverse()
}
