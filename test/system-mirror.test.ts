import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { MemoryNetworkFabric, createDrSystem, memoryStateStore, memoryStorage, type DrSystem, type StoragePort } from '../src/index.js'

const BS = 4096
const token = { scope: 'setup', value: 1 }

async function digest(storage: StoragePort, volume: string, snapshot?: string): Promise<string> {
  const info = await storage.volumeInfo(volume)
  const hash = createHash('sha256')
  for (let offset = 0; offset < info.sizeBytes; offset += BS) hash.update(await storage.read(volume, offset, BS, snapshot === undefined ? {} : { snapshot }))
  return hash.digest('hex')
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('dr.mirrors through createDrSystem', () => {
  it('replicates, survives a coordinator restart, fails over, resyncs and fails back on the system journal', async () => {
    const state = memoryStateStore()
    const east = memoryStorage()
    const west = memoryStorage()
    const fabric = new MemoryNetworkFabric()
    // The state store and storages outlive a coordinator; close() would close them, so each coordinator gets wrappers.
    const keepOpen = <T extends object>(port: T): T =>
      new Proxy(port, {
        get: (target, key) => {
          if (key === 'close') return async () => undefined
          const value: unknown = Reflect.get(target, key, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
    const open = (): Promise<DrSystem> =>
      createDrSystem({
        state: keepOpen(state),
        sites: { east: { storage: keepOpen(east), network: fabric.port('east') }, west: { storage: keepOpen(west), network: fabric.port('west') } },
      })
    await east.createVolume({ name: 'db', sizeBytes: 64 * BS, blockSize: BS }, token)
    await east.write('db', 0, new Uint8Array(BS).fill(1), token)

    const first = await open()
    await first.mirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h' } })
    await eventually('the initial copy', async () => (await first.mirrors.status('db')).lastPlayedBack !== null)
    await first.close()

    const second = await open()
    const failedOver: unknown[] = []
    second.events.on('mirror.failedOver', (event) => failedOver.push(event.payload))
    expect(await second.mirrors.status('db')).toMatchObject({ state: 'replicating', epoch: 1 })
    await east.write('db', 5 * BS, new Uint8Array(BS).fill(5), second.token())
    await second.mirrors.cutNow('db')
    const result = await second.mirrors.failover('db', { mode: 'sync' })
    expect(result).toMatchObject({ epoch: 2 })
    expect(await digest(west, 'db')).toBe(await digest(east, 'db'))
    expect(await second.mirrors.status('db')).toMatchObject({ state: 'failedOver', direction: 'reverse', source: { site: 'west', writable: true }, destination: { site: 'east', writable: false } })
    expect(failedOver).toEqual([expect.objectContaining({ id: 'db', mode: 'sync', epoch: 2 })])

    await west.write('db', 9 * BS, new Uint8Array(BS).fill(9), second.token())
    await second.mirrors.resync('db', { acknowledgeDataLoss: true })
    await second.mirrors.failback('db')
    const back = await second.mirrors.status('db')
    expect(back).toMatchObject({ direction: 'forward', source: { site: 'east', writable: true }, destination: { site: 'west', writable: false } })
    expect(back.epoch).toBeGreaterThan(2)
    expect(await digest(east, 'db')).toBe(await digest(west, 'db'))
    await second.close()
  })

  it('rejects mirror calls with bad input through the system facade with E_INVALID_INPUT, creating nothing', async () => {
    const fabric = new MemoryNetworkFabric()
    const east = memoryStorage()
    await using dr = await createDrSystem({
      state: memoryStateStore(),
      sites: { east: { storage: east, network: fabric.port('east') }, west: { storage: memoryStorage() } },
    })
    await expect(dr.mirrors.create({ id: 'no spaces', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await east.createVolume({ name: 'db', sizeBytes: 16 * BS, blockSize: BS }, dr.token())
    // west has no network adapter: the mirror cannot be created, and nothing is left behind.
    await expect(dr.mirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await dr.mirrors.list()).toEqual([])
  })
})
