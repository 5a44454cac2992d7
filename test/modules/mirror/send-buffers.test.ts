import { describe, expect, it } from 'vitest'
import type { ReadRangesOptions, StoragePort } from '../../../src/ports/storage.js'
import { SendBuffers } from '../../../src/modules/mirror/send-buffers.js'
import { BS, blockHashes, random, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem, replicating } from '../../fixtures/mirror-system.js'

describe('mirror send buffers', () => {
  it('hands a released buffer out again for a frame that fits, and allocates for one that does not', () => {
    const buffers = new SendBuffers(1024 * 1024)
    const first = buffers.take(100_000)
    expect(first.bytes.length).toBe(100_000)
    first.bytes.fill(7)
    first.release()
    expect(buffers.idleBytes).toBeGreaterThanOrEqual(100_000)
    const again = buffers.take(90_000)
    expect(again.bytes.buffer, 'the same memory, reused').toBe(first.bytes.buffer)
    expect(buffers.idleBytes).toBe(0)
    const bigger = buffers.take(300_000)
    expect(bigger.bytes.buffer).not.toBe(first.bytes.buffer)
    expect(bigger.bytes.length).toBe(300_000)
  })

  it('keeps at most its idle limit, and a second release of the same buffer changes nothing', () => {
    const buffers = new SendBuffers(200_000)
    const taken = [buffers.take(120_000), buffers.take(120_000)]
    for (const buffer of taken) buffer.release()
    const kept = buffers.idleBytes
    expect(kept).toBeLessThanOrEqual(200_000)
    expect(kept).toBeGreaterThan(0)
    taken[0]!.release()
    taken[1]!.release()
    expect(buffers.idleBytes).toBe(kept)
  })
})

describe('mirror over a storage adapter that reads into new arrays instead of the buffers it is lent', () => {
  it('still replicates every byte: the sender copies what the adapter returned into its frames', async () => {
    const lent: number[] = []
    const d = await durable({
      sizeBlocks: 64,
      wrap: (site, storage) =>
        site !== 'east'
          ? storage
          : new Proxy(storage, {
              get(target, key) {
                const member: unknown = Reflect.get(target, key, target)
                if (key !== 'readRanges') return typeof member === 'function' ? (member as (...args: unknown[]) => unknown).bind(target) : member
                return (volume: string, ranges: Parameters<StoragePort['readRanges']>[1], options?: ReadRangesOptions) => {
                  lent.push(options?.into?.length ?? 0)
                  const { into: _ignored, ...rest } = options ?? {}
                  return target.readRanges(volume, ranges, rest)
                }
              },
            }),
    })
    const s = await openSystem(d)
    await replicating(s, { blocks: 40 })
    for (let b = 0; b < 64; b += 3) await d.raw['east']!.write('db', b * BS, random(BS), token)
    await s.mirrors.cutNow('m')
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 2, 'delta set 2 played back')
    expect(lent.some((count) => count > 0), 'the sender lent its buffers').toBe(true)
    expect(await blockHashes(d.raw['west']!, 'db'), 'west holds what east held at the cut').toEqual(await blockHashes(d.raw['east']!, 'db'))
    await s.module.close()
  })
})
