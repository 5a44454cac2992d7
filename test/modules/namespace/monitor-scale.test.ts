import { describe, expect, it } from 'vitest'
import { manyLinks, openNamespace } from '../../fixtures/namespace-world.js'

/** Lets pending promise chains and I/O run until `condition` holds (a barrier, not a time limit). */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 100_000; turn++) {
    if (condition()) return
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  throw new Error(`never happened: ${what}`)
}

describe('monitoring at scale', () => {
  it('probes 200 shares with at most probeConcurrency (4) probeShare calls in flight at the adapter', async () => {
    const d = await manyLinks(200, {})
    const w = await openNamespace(d, { probeConcurrency: 4 })
    const pending = () => d.faults['east']!.calls.filter((call) => call.method === 'probeShare' && call.outcome === 'pending').length
    let peak = 0
    d.faults['east']!.setLatency((call) => {
      if (call.method !== 'probeShare') return 0
      peak = Math.max(peak, pending())
      return 10
    })
    let pass: Awaited<ReturnType<typeof w.ns.probeNow>> | undefined
    const running = w.ns.probeNow().then((result) => (pass = result))
    while (pass === undefined) await d.clock.advance(10)
    await running
    expect(pass).toMatchObject({ accessible: 200, failed: 0 })
    expect(d.faults['east']!.count('probeShare')).toBe(200)
    expect(peak).toBeLessThanOrEqual(4)
    expect(peak).toBeGreaterThan(1)
  })

  it('a probe that times out is not repeated while its call is outstanding: a hung server costs one call per share, and each pass counts a failure', async () => {
    const d = await manyLinks(200, { probeTimeout: '1s', failuresBeforeInaccessible: 3 })
    const w = await openNamespace(d, { probeConcurrency: 8 })
    d.faults['east']!.setLatency((call) => (call.method === 'probeShare' ? 3_600_000 : 0))
    const passes = []
    for (let n = 0; n < 3; n++) {
      let done = false
      const running = w.ns.probeNow().then((result) => {
        done = true
        return result
      })
      while (!done) await d.clock.advance(1_000)
      passes.push(await running)
    }
    expect(passes.map((p) => p.failed)).toEqual([200, 200, 200])
    expect(d.faults['east']!.count('probeShare')).toBe(200)
    expect(d.faults['east']!.calls.filter((call) => call.method === 'probeShare' && call.outcome === 'pending')).toHaveLength(200)
    expect(passes[2]?.declared).toHaveLength(200)
    expect(w.names('namespace.shareInaccessible').map((e) => e.payload)).toEqual(
      expect.arrayContaining([expect.objectContaining({ site: 'east', share: 's0', reason: 'timeout', failures: 3 })]),
    )
    expect((await w.ns.get({ namespace: 'corp', path: '/l199' })).protection?.state).toBe('failoverRequired')
  })

  it('watches 2,000 links with one timer: one pass per interval probes every primary share once and heartbeats each destination', async () => {
    const d = await manyLinks(2_000, { probeInterval: '30s' })
    const w = await openNamespace(d, { monitor: true })
    const probes = (site: string) => d.faults[site]!.count('probeShare')
    await d.clock.advance(0)
    await until(() => probes('east') === 2_000 && probes('west') === 2_000 && d.clock.pendingTimers === 1, 'the first pass')
    expect(d.faults['west']!.count('volumeInfo')).toBe(1)
    await d.clock.advance(29_999)
    expect(probes('east')).toBe(2_000)
    await d.clock.advance(1)
    await until(() => probes('east') === 4_000 && probes('west') === 4_000 && d.clock.pendingTimers === 1, 'the second pass')
    expect(d.clock.pendingTimers).toBe(1)
    expect((await w.ns.get({ namespace: 'corp', path: '/l1999' })).protection?.state).toBe('protected')
    await w.module.close()
    expect(d.clock.pendingTimers).toBe(0)
  }, 60_000)
})
