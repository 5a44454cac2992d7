import assert from 'node:assert/strict'
import type { ShareInfo } from '../ports/storage.js'
import type { ConformanceCase } from './conformance.js'
import { BS, assertReads, makeVolume, rejectsWith, token, writeBlock, type StorageCaseBuilder } from './storage-conformance-support.js'

const READ_WRITE: ShareInfo['access'] = ['read', 'write']

/** Storage conformance cases for shares, share probes and configuration records. */
export function shareAndConfigCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('createShare describes the share; getShare returns it and listShares lists shares sorted by name', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const created = await storage.createShare({ name: 'projects', volume: 'vol', path: '/projects', protocol: 'smb', access: READ_WRITE }, token())
      assert.equal(created.name, 'projects')
      assert.equal(created.volume, 'vol')
      assert.equal(created.path, '/projects')
      assert.equal(created.protocol, 'smb')
      assert.deepEqual([...created.access].sort(), ['read', 'write'])
      assert.equal(typeof created.createdAt, 'number')
      const home = await storage.createShare({ name: 'home', volume: 'vol', path: '/home', protocol: 'nfs', access: ['read'] }, token())
      assert.deepEqual(await storage.getShare('projects'), created)
      assert.equal(await storage.getShare('missing'), undefined)
      assert.deepEqual(await storage.listShares(), [home, created])
    }),

    test('createShare with a taken name rejects with E_CONFLICT, and on an unknown volume with E_NOT_FOUND', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const first = await storage.createShare({ name: 'share', volume: 'vol', path: '/a', protocol: 'nfs', access: ['read'] }, token())
      await rejectsWith(
        storage.createShare({ name: 'share', volume: 'vol', path: '/b', protocol: 'smb', access: READ_WRITE }, token()),
        'E_CONFLICT',
        'duplicate share',
      )
      await rejectsWith(
        storage.createShare({ name: 'other', volume: 'missing', path: '/', protocol: 'nfs', access: ['read'] }, token()),
        'E_NOT_FOUND',
        'share on an unknown volume',
      )
      assert.deepEqual(await storage.listShares(), [first])
    }),

    test('deleteShare removes the share but not the data; deleting or changing an unknown share rejects with E_NOT_FOUND', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const data = await writeBlock(storage, 'vol', 1, 3)
      await storage.createShare({ name: 'share', volume: 'vol', path: '/', protocol: 'nfs', access: ['read'] }, token())
      await storage.deleteShare('share', token())
      assert.equal(await storage.getShare('share'), undefined)
      assert.deepEqual(await storage.listShares(), [])
      await assertReads(storage, 'vol', BS, data, 'data after deleting the share')
      await rejectsWith(storage.deleteShare('share', token()), 'E_NOT_FOUND', 'delete an unknown share')
      await rejectsWith(storage.setShareAccess('share', ['read'], token()), 'E_NOT_FOUND', 'setShareAccess on an unknown share')
    }),

    test('probeShare reports online, accessDenied, offline and deleted as the share and its volume change', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await storage.createShare({ name: 'share', volume: 'vol', path: '/', protocol: 'smb', access: READ_WRITE }, token())
      const probe = async (access: ShareInfo['access']): Promise<string> => {
        const result = await storage.probeShare('share', access)
        assert.equal(result.share, 'share')
        return result.state
      }
      assert.equal(await probe(READ_WRITE), 'online')
      await storage.setShareAccess('share', ['read'], token())
      assert.deepEqual((await storage.getShare('share'))?.access, ['read'])
      assert.equal(await probe(['read']), 'online')
      assert.equal(await probe(READ_WRITE), 'accessDenied')
      assert.equal(await probe(['write']), 'accessDenied')
      await storage.setOnline('vol', false, token())
      assert.equal(await probe(['read']), 'offline')
      await storage.setOnline('vol', true, token())
      assert.equal(await probe(['read']), 'online')
      await storage.deleteShare('share', token())
      assert.equal(await probe(['read']), 'deleted')
    }),

    test('putConfig stores a JSON record per volume that getConfig returns, replacing any earlier value; listConfig sorts by key', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await makeVolume(storage, 'other', 2)
      const value = { mirror: { target: 'west', every: '30s' }, tags: ['a', 'b'], on: true, n: 1.5, none: null }
      await storage.putConfig('vol', 'zeta', value, token())
      await storage.putConfig('vol', 'alpha', 'first', token())
      await storage.putConfig('vol', 'alpha', 'second', token())
      await storage.putConfig('other', 'alpha', 42, token())
      assert.deepEqual(await storage.getConfig('vol', 'zeta'), value)
      assert.equal(await storage.getConfig('vol', 'alpha'), 'second')
      assert.equal(await storage.getConfig('vol', 'missing'), undefined)
      assert.deepEqual(await storage.listConfig('vol'), [
        ['alpha', 'second'],
        ['zeta', value],
      ])
      assert.deepEqual(await storage.listConfig('other'), [['alpha', 42]])
    }),

    test('deleteConfig removes a record and is idempotent; stored values are copies of what was put and got', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const value = { list: [1, 2, 3], nested: { key: 'value' } }
      await storage.putConfig('vol', 'record', value, token())
      value.list.push(4)
      value.nested.key = 'changed'
      const got = await storage.getConfig('vol', 'record')
      assert.deepEqual(got, { list: [1, 2, 3], nested: { key: 'value' } })
      if (typeof got === 'object' && got !== null && !Array.isArray(got)) (got as Record<string, unknown>)['list'] = []
      assert.deepEqual(await storage.getConfig('vol', 'record'), { list: [1, 2, 3], nested: { key: 'value' } })
      await storage.deleteConfig('vol', 'record', token())
      await storage.deleteConfig('vol', 'record', token())
      assert.equal(await storage.getConfig('vol', 'record'), undefined)
      assert.deepEqual(await storage.listConfig('vol'), [])
    }),
  ]
}
