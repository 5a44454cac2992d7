import { describe, expect, it } from 'vitest'
import { BS, blockHashes, block, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem } from '../../fixtures/mirror-system.js'

describe('mirror lifecycle (smoke)', () => {
  it('create, replicate, failover, write, resync, failback: identical at the end, never both writable', async () => {
    const d = await durable()
    const s = await openSystem(d)
    const east = d.raw['east']!
    const west = d.raw['west']!
    for (let b = 0; b < 50; b++) await east.write('db', b * BS, block(b + 1), token)
    await s.mirrors.create({ id: 'm1', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, transfer: { chunkSize: 8 * BS } })
    await until(async () => (await s.mirrors.status('m1')).lastPlayedBack === 1, 'initial copy')
    await east.write('db', 3 * BS, block(200), token)
    const { deltaSet } = await s.mirrors.cutNow('m1')
    await until(async () => (await s.mirrors.status('m1')).lastPlayedBack === deltaSet, 'delta 2')
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    await east.write('db', 4 * BS, block(201), token)
    const fo = await s.mirrors.failover('m1', { mode: 'default' })
    expect(fo.lastApplied).toBe(2)
    expect(await d.writableNow()).toEqual(['west'])
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(west, 'db', fo.restartPoint))
    await west.write('db', 10 * BS, block(77), token)
    await s.mirrors.resync('m1', { acknowledgeDataLoss: true })
    expect(await d.writableNow()).toEqual(['west'])
    await west.write('db', 11 * BS, block(78), token)
    await s.mirrors.failback('m1')
    expect(await d.writableNow()).toEqual(['east'])
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    expect(d.violations).toEqual([])
    await s.module.close()
  })
})
