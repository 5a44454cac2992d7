import { describe, expect, it } from 'vitest'
import { MirrorAgent, type AttachRequest } from '../../../src/modules/mirror/agent.js'
import { BS, agentWorld, blockHashes, block, token, until } from '../../fixtures/mirror-world.js'

const policies = {
  cut: { everyMs: 600_000, highWaterMarkBytes: 8 * 1024 * 1024, probeMs: 1000 },
  playback: { everyMs: null, highWaterMarkBytes: null },
  transfer: { chunkBytes: 16 * BS, retries: 3, stagingMaxBytes: null },
}

describe('mirror agents (smoke)', () => {
  it('initial copy then incremental delta sets cross the network and play back', async () => {
    const w = agentWorld()
    const east = w.storages['east']!
    const west = w.storages['west']!
    await east.createVolume({ name: 'db', sizeBytes: 256 * BS, blockSize: BS }, token)
    await west.createVolume({ name: 'db', sizeBytes: 256 * BS, blockSize: BS }, token)
    await west.setWritable('db', false, token)
    for (let b = 0; b < 100; b += 3) await east.write('db', b * BS, block(b + 1), token)
    const eastAgent = await MirrorAgent.start(w.ctx('east'))
    const westAgent = await MirrorAgent.start(w.ctx('west'))
    const base: Omit<AttachRequest, 'volume' | 'peer'> = { session: 'm1', epoch: 1, base: null, ...policies }
    const dst = await westAgent.attachDestination({ ...base, volume: 'db', peer: { site: 'east', volume: 'db' } })
    const src = await eastAgent.attachSource({ ...base, volume: 'db', peer: { site: 'west', volume: 'db' } })
    await dst.waitPlayed(1)
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db', 'drkit.m.m1.ds-1'))
    await east.write('db', 7 * BS, block(99), token)
    await east.trim('db', 9 * BS, BS, token)
    const n = await src.cutNow()
    expect(n).toBe(2)
    await dst.waitPlayed(2)
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    await until(() => src.progress().remotePlayed === 2, 'ack')
    const names = (await east.listSnapshots('db')).map((s) => `${s.name}:${s.holds.join(',')}`)
    expect(names).toEqual(['drkit.m.m1.ds-2:drkit.mirror.m1.base'])
    expect((await west.volumeInfo('db')).writable).toBe(false)
    await eastAgent.close()
    await westAgent.close()
  })
})
