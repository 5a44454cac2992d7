import assert from 'node:assert/strict'
import type { FenceToken } from '../kernel/fencing.js'
import type { StoragePort } from '../ports/storage.js'
import type { ConformanceCase } from './conformance.js'
import { BS, makeVolume, pattern, rejectsWith, token, type StorageCaseBuilder } from './storage-conformance-support.js'

/** The token value the stale-token world is built with; calls with a lower value are stale. */
const CURRENT = 5

type MutatingCall = readonly [string, (storage: StoragePort, token: FenceToken) => Promise<unknown>]

/**
 * Builds a world with every kind of resource, using token {@link CURRENT}: volume `vol` with data, snapshot
 * `snap`, held snapshot `held` (tag `keep`) and data written after them, volume `spare`, fenced volume `gated`,
 * share `share` on `vol` and config record `k` on `vol`.
 */
async function buildWorld(storage: StoragePort): Promise<void> {
  const t = token(CURRENT)
  await storage.createVolume({ name: 'vol', sizeBytes: 8 * BS, blockSize: BS }, t)
  await storage.write('vol', 0, pattern(1, 8 * BS), t)
  await storage.createSnapshot('vol', 'snap', t)
  await storage.createSnapshot('vol', 'held', t)
  await storage.holdSnapshot('vol', 'held', 'keep', t)
  await storage.write('vol', 0, pattern(2, 2 * BS), t)
  await storage.createVolume({ name: 'spare', sizeBytes: 2 * BS, blockSize: BS }, t)
  await storage.createVolume({ name: 'gated', sizeBytes: 2 * BS, blockSize: BS }, t)
  await storage.fence('gated', t)
  await storage.createShare({ name: 'share', volume: 'vol', path: '/', protocol: 'nfs', access: ['read', 'write'] }, t)
  await storage.putConfig('vol', 'k', { a: 1 }, t)
}

/** Everything a client can observe about the storage, without waiting on a fenced volume. */
async function observe(storage: StoragePort): Promise<unknown> {
  const volumes = []
  for (const info of await storage.listVolumes()) {
    const fenced = await storage.isFenced(info.name)
    const snapshots = await storage.listSnapshots(info.name)
    const readable = !fenced && info.online
    const data = readable ? await storage.read(info.name, 0, info.sizeBytes) : null
    const snapshotData = []
    for (const snapshot of snapshots) {
      snapshotData.push(readable ? await storage.read(info.name, 0, snapshot.sizeBytes, { snapshot: snapshot.name }) : null)
    }
    volumes.push({ info, fenced, snapshots, data, snapshotData, config: await storage.listConfig(info.name) })
  }
  return { volumes, shares: await storage.listShares() }
}

/** One case: in the world, each call with a stale token rejects with `E_FENCED` and changes nothing observable. */
function staleCase(test: StorageCaseBuilder, group: string, calls: readonly [MutatingCall, ...MutatingCall[]]): ConformanceCase {
  const names = calls.map(([name]) => name).join(', ')
  return test(`a stale fence token is rejected with E_FENCED and changes nothing: ${group} (${names})`, async (storage) => {
    await buildWorld(storage)
    const before = await observe(storage)
    for (const [name, call] of calls) {
      await rejectsWith(call(storage, token(CURRENT - 1)), 'E_FENCED', `${name} with a stale token`)
      assert.deepEqual(await observe(storage), before, `${name} with a stale token changed nothing`)
    }
    const [name, call] = calls[0]
    await call(storage, token(CURRENT))
    assert.notDeepEqual(await observe(storage), before, `${name} with the current token takes effect`)
  })
}

/** Storage conformance cases for fence tokens on every mutating call, and for `close`. */
export function tokenCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    staleCase(test, 'volumes and config', [
      ['createVolume', (s, t) => s.createVolume({ name: 'new', sizeBytes: 2 * BS, blockSize: BS }, t)],
      ['deleteVolume', (s, t) => s.deleteVolume('spare', t)],
      ['resizeVolume', (s, t) => s.resizeVolume('vol', 4 * BS, t)],
      ['setOnline', (s, t) => s.setOnline('vol', false, t)],
      ['setWritable', (s, t) => s.setWritable('vol', false, t)],
      ['putConfig', (s, t) => s.putConfig('vol', 'k', 2, t)],
      ['deleteConfig', (s, t) => s.deleteConfig('vol', 'k', t)],
    ]),
    staleCase(test, 'I/O and fences', [
      ['write', (s, t) => s.write('vol', 10, pattern(3, BS), t)],
      ['trim', (s, t) => s.trim('vol', 0, 4 * BS, t)],
      ['writeRanges', (s, t) => s.writeRanges('vol', [{ offset: 10, data: pattern(4, BS) }, { offset: 4 * BS, length: 2 * BS, hole: true }], t)],
      ['writeRanges for replication', (s, t) => s.writeRanges('vol', [{ offset: 0, data: pattern(5, 10) }], t, { replication: true })],
      ['fence', (s, t) => s.fence('vol', t)],
      ['unfence', (s, t) => s.unfence('gated', t)],
    ]),
    staleCase(test, 'snapshots', [
      ['createSnapshot', (s, t) => s.createSnapshot('vol', 'new', t)],
      ['deleteSnapshot', (s, t) => s.deleteSnapshot('vol', 'snap', t)],
      ['restoreSnapshot', (s, t) => s.restoreSnapshot('vol', 'snap', t)],
      ['cloneSnapshot', (s, t) => s.cloneSnapshot('vol', 'snap', 'copy', t)],
      ['holdSnapshot', (s, t) => s.holdSnapshot('vol', 'snap', 'tag', t)],
      ['releaseSnapshot', (s, t) => s.releaseSnapshot('vol', 'held', 'keep', t)],
    ]),
    staleCase(test, 'shares', [
      ['createShare', (s, t) => s.createShare({ name: 'new', volume: 'vol', path: '/x', protocol: 'smb', access: ['read'] }, t)],
      ['deleteShare', (s, t) => s.deleteShare('share', t)],
      ['setShareAccess', (s, t) => s.setShareAccess('share', ['read'], t)],
    ]),

    test('a token equal to the highest seen or higher is accepted, and a higher one makes the previous value stale', async (storage) => {
      await storage.createVolume({ name: 'vol', sizeBytes: 2 * BS, blockSize: BS }, token(3))
      await storage.write('vol', 0, pattern(1, 10), token(3))
      await storage.write('vol', 0, pattern(2, 10), token(4))
      await rejectsWith(storage.write('vol', 0, pattern(3, 10), token(3)), 'E_FENCED', 'write with the superseded token')
      await storage.write('vol', 0, pattern(4, 10), token(4))
      assert.deepEqual(await storage.read('vol', 0, 10), pattern(4, 10))
    }),

    test('presentToken raises the fence floor and changes nothing else; presenting a stale token is refused', async (storage) => {
      await buildWorld(storage)
      const before = await observe(storage)
      await storage.presentToken(token(CURRENT + 1))
      assert.deepEqual(await observe(storage), before, 'presentToken changed nothing observable')
      await rejectsWith(storage.write('spare', 0, pattern(3, 10), token(CURRENT)), 'E_FENCED', 'write with the token presentToken superseded')
      await rejectsWith(storage.createVolume({ name: 'new', sizeBytes: 2 * BS, blockSize: BS }, token(CURRENT)), 'E_FENCED', 'createVolume with the superseded token')
      await rejectsWith(storage.presentToken(token(CURRENT)), 'E_FENCED', 'presentToken with a stale token')
      await storage.presentToken(token(CURRENT + 1))
      await storage.presentToken(token(1, 'another-scope'))
      assert.deepEqual(await observe(storage), before, 'stale and repeated presentations changed nothing')
      await storage.write('spare', 0, pattern(3, 10), token(CURRENT + 1))
      assert.deepEqual(await storage.read('spare', 0, 10), pattern(3, 10))
    }),

    test('fence tokens of different scopes are independent', async (storage) => {
      await storage.createVolume({ name: 'vol', sizeBytes: 2 * BS, blockSize: BS }, token(10, 'scope-a'))
      await storage.write('vol', 0, pattern(1, 10), token(1, 'scope-b'))
      await storage.putConfig('vol', 'k', 'v', token(1, 'scope-c'))
      await rejectsWith(storage.write('vol', 0, pattern(2, 10), token(9, 'scope-a')), 'E_FENCED', 'lower token of scope-a')
      await storage.write('vol', 0, pattern(3, 10), token(1, 'scope-b'))
      assert.deepEqual(await storage.read('vol', 0, 10), pattern(3, 10))
    }),

    test('after close every call rejects with E_CLOSED', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await storage.createSnapshot('vol', 'snap', token())
      await storage.close()
      const t = token()
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['createVolume', () => makeVolume(storage, 'other', 2)],
        ['volumeInfo', () => storage.volumeInfo('vol')],
        ['listVolumes', () => storage.listVolumes()],
        ['read', () => storage.read('vol', 0, 1)],
        ['write', () => storage.write('vol', 0, pattern(1, 1), t)],
        ['readRanges', () => storage.readRanges('vol', [{ offset: 0, length: 1 }])],
        ['writeRanges', () => storage.writeRanges('vol', [{ offset: 0, data: pattern(1, 1) }], t)],
        ['createSnapshot', () => storage.createSnapshot('vol', 'again', t)],
        ['listSnapshots', () => storage.listSnapshots('vol')],
        ['changedBlocks', () => storage.changedBlocks('vol', null, 'snap')],
        ['fence', () => storage.fence('vol', t)],
        ['getShare', () => storage.getShare('share')],
        ['probeShare', () => storage.probeShare('share', ['read'])],
        ['putConfig', () => storage.putConfig('vol', 'k', 1, t)],
        ['getConfig', () => storage.getConfig('vol', 'k')],
        ['presentToken', () => storage.presentToken(t)],
      ]
      for (const [operation, call] of calls) await rejectsWith(call(), 'E_CLOSED', operation)
    }),
  ]
}
