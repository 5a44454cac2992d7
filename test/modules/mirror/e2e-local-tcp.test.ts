import { afterEach, describe, expect, it } from 'vitest'
import { blockHashes } from '../../fixtures/mirror-world.js'
import { eventually, tcpMirrorWorld } from '../../fixtures/mirror-tcp.js'

const BLOCK = 64 * 1024
const BLOCKS = 256

const worlds: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close()
})

describe('mirror end to end: local storage (real files) over TCP on loopback', () => {
  for (const mode of ['sync', 'default', 'now'] as const) {
    it(`replicates, fails over (${mode}), the destination equals the restart point byte for byte; write, resync, failback: both sides identical, no full copy (bytes counted on the wire)`, async () => {
      const w = await tcpMirrorWorld({ blockSize: BLOCK, blocks: BLOCKS, proxy: true })
      worlds.push(w)
      const status = () => w.mirrors.status('e2e')
      // Playback is batched hourly, so the delta set cut below is received but not played when the failover starts.
      await w.mirrors.create({ id: 'e2e', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h' }, playback: { every: '1h' }, transfer: { chunkSize: '1MiB' } })
      await eventually(async () => (await status()).lastPlayedBack === 1, 'initial copy')
      const initial = await blockHashes(w.east, 'db')
      expect(await blockHashes(w.west, 'db')).toEqual(initial)
      const wireAtStart = w.wireBytes()
      const changed = [3, 4, 17, 100, 101, 200]
      await w.write(w.east, changed)
      const atCut = await blockHashes(w.east, 'db')
      const { deltaSet } = await w.mirrors.cutNow('e2e')
      await eventually(async () => (await status()).lastReceived === deltaSet, 'delta set received')
      expect((await status()).lastPlayedBack).toBe(1)
      await w.write(w.east, [5, 6])
      const atFailover = await blockHashes(w.east, 'db')

      const failedOver = await w.mirrors.failover('e2e', { mode })
      const restartPoint = await blockHashes(w.west, 'db', failedOver.restartPoint)
      expect(await blockHashes(w.west, 'db')).toEqual(restartPoint)
      const expected = { sync: atFailover, default: atCut, now: initial }[mode]
      expect(restartPoint).toEqual(expected)
      if (mode === 'sync') expect(failedOver.lastApplied).toBeGreaterThan(deltaSet)
      else expect(failedOver.lastApplied).toBe(mode === 'default' ? deltaSet : 1)
      expect(await w.watch.writableNow()).toEqual(['west'])

      const after = [10, 11, 150]
      await w.write(w.west, after)
      await w.mirrors.resync('e2e', { acknowledgeDataLoss: true })
      await w.write(w.west, [12])
      await w.mirrors.failback('e2e')
      expect(await w.watch.writableNow()).toEqual(['east'])
      expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db'))
      expect(w.watch.violations).toEqual([])

      const sent = w.names('mirror.deltaSetSent').map((e) => e.payload)
      expect(sent[0]).toMatchObject({ deltaSet: 1, full: true })
      expect(sent.slice(1).every((p) => p['full'] === false)).toBe(true)
      expect(w.names('mirror.fullCopyRequired')).toEqual([])
      const resynced = w.names('mirror.resynced')[0]!.payload
      expect(resynced).toMatchObject({ mode: 'undo' })
      // What had to cross, in blocks: the delta set cut before the failover, the last one a sync failover drains, the
      // before-images the undo fetched, the restart point → intermediate differential and the block written before
      // the failback. Everything on the wire after the initial copy (both directions, framing, control frames and
      // the resync's fetch traffic included) stays within 1.1× of it: no full copy happened.
      const needed = (changed.length + (mode === 'sync' ? 2 : 0) + (resynced['undoneBlocks'] as number) + after.length + 1) * BLOCK
      expect(w.wireBytes() - wireAtStart).toBeGreaterThanOrEqual(needed)
      expect(w.wireBytes() - wireAtStart).toBeLessThanOrEqual(1.1 * needed)
    })
  }
})
