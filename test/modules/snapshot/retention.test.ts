import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { selectExpired, nextRun, type RetentionCandidate, type RetentionGrid } from '../../../src/modules/snapshot/index.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** Reference model: walk the grid window by window and pick the newest snapshot in each. */
function referenceKept(candidates: readonly RetentionCandidate[], grid: RetentionGrid, now: number): Set<string> {
  const newestFirst = [...candidates].sort((a, b) => b.createdAt - a.createdAt || b.name.localeCompare(a.name))
  const kept = new Set(newestFirst.slice(0, grid.keepLast).map((c) => c.name))
  for (const { every, count } of grid.buckets) {
    for (let i = 0; i < count; i++) {
      const start = (Math.floor(now / every) - i) * every
      const inWindow = newestFirst.filter((c) => c.createdAt >= start && c.createdAt < start + every)
      if (inWindow[0] !== undefined) kept.add(inWindow[0].name)
    }
  }
  for (const c of candidates) if (c.protected || c.createdAt > now) kept.add(c.name)
  return kept
}

const gridArb = fc.record({
  keepLast: fc.integer({ min: 1, max: 5 }),
  buckets: fc.array(fc.record({ every: fc.constantFrom(HOUR, 6 * HOUR, DAY, 7 * DAY), count: fc.integer({ min: 1, max: 10 }) }), { maxLength: 3 }),
})
const historyArb = fc.uniqueArray(
  fc.record({ createdAt: fc.integer({ min: 0, max: 30 * DAY }), protected: fc.boolean(), id: fc.nat() }),
  { selector: (s) => s.id, maxLength: 60 },
).map((items) => items.map((item, i) => ({ name: `s${i}`, createdAt: item.createdAt, protected: item.protected && item.id % 4 === 0 })))

describe('retention grid', () => {
  it('property: the kept set matches the reference model, and held snapshots are never expired', () => {
    fc.assert(
      fc.property(historyArb, gridArb, fc.integer({ min: 0, max: 31 * DAY }), (history, grid, now) => {
        const expired = selectExpired(history, grid, now)
        const kept = referenceKept(history, grid, now)
        expect(new Set(expired)).toEqual(new Set(history.filter((h) => !kept.has(h.name)).map((h) => h.name)))
        for (const name of expired) expect(history.find((h) => h.name === name)?.protected).toBe(false)
      }),
      { numRuns: 500 },
    )
  })

  it('keeps the newest n and one per hour for the last day (hourly for a day)', () => {
    const now = 10 * DAY + 30 * 60_000 // half past midnight: q0, q1, q2 share the current hour
    const history = Array.from({ length: 96 }, (_, i) => ({ name: `q${i}`, createdAt: now - i * 15 * 60_000, protected: false }))
    const expired = new Set(selectExpired(history, { keepLast: 2, buckets: [{ every: HOUR, count: 24 }] }, now))
    const kept = history.filter((h) => !expired.has(h.name)).map((h) => h.name)
    expect(kept.length).toBe(24 + 1) // the newest of each of 24 hours, plus q1 kept as the second newest
    expect(kept.slice(0, 3)).toEqual(['q0', 'q1', 'q3'])
    expect(expired.has('q95')).toBe(true) // 23h45m old: outside the 24 hourly windows
  })

  it('never expires a held snapshot, even the oldest of a long outage (no forced full resend)', () => {
    const history = [
      { name: 'base', createdAt: 0, protected: true },
      { name: 'a', createdAt: 7 * DAY, protected: false },
      { name: 'b', createdAt: 7 * DAY + 1, protected: false },
    ]
    expect(selectExpired(history, { keepLast: 1, buckets: [] }, 8 * DAY)).toEqual(['a'])
  })
})

describe('schedule specs', () => {
  it('every N fires on epoch-aligned boundaries strictly after the given time', () => {
    expect(nextRun({ every: 15 * 60_000 }, 0)).toBe(15 * 60_000)
    expect(nextRun({ every: 15 * 60_000 }, 15 * 60_000)).toBe(30 * 60_000)
  })

  it('daily and weekly fire at the UTC time given', () => {
    const monday = Date.UTC(2026, 10, 16, 12, 0) // Monday 16 Nov 2026 12:00 UTC
    expect(new Date(nextRun({ daily: '02:30' }, monday)).toISOString()).toBe('2026-11-17T02:30:00.000Z')
    expect(new Date(nextRun({ daily: '13:00' }, monday)).toISOString()).toBe('2026-11-16T13:00:00.000Z')
    expect(new Date(nextRun({ weekly: { day: 'mon', at: '12:00' } }, monday)).toISOString()).toBe('2026-11-23T12:00:00.000Z')
    expect(new Date(nextRun({ weekly: { day: 'wed', at: '00:00' } }, monday)).toISOString()).toBe('2026-11-18T00:00:00.000Z')
  })
})
