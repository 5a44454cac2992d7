import { describe, expect, it } from 'vitest'
import type { ReadRangesOptions, StoragePort } from '../../../src/ports/storage.js'
import { BS, blockHashes, random, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem, replicating } from '../../fixtures/mirror-system.js'

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
