import { describe, expect, it } from 'vitest'
import * as E from 'fp-ts/lib/Either.js'
import fc from 'fast-check'
import { produce, type Draft } from 'immer'
import {
  ACTIVE_FILE_SYSTEM,
  checkClientAccess,
  checkSnapshotAccess,
  chooseHandleSource,
  constituentFenceOrder,
  decideBeginShrink,
  decideOpenGroup,
  decideRegister,
  decideSetRedirect,
  decideSetReplica,
  emptyVolumeCatalog,
  reduceVolumeCatalog,
  snapshotView,
  VolumeJournalEventCodec,
  type SnapshotEntry,
  type VolumeCatalogState,
  type VolumeJournalEvent,
  type VolumeRecord,
} from '../../../src/modules/volume/index.js'
import { crc32 } from '../../../src/kernel/crc32.js'
import {
  MAX_PATH_BYTES,
  decodeLocator,
  decodeObject,
  decodeSlot,
  encodeLocator,
  encodeObject,
  encodeSlot,
  pathHash,
} from '../../../src/modules/volume/layout.js'

const record: VolumeRecord = {
  site: 'east',
  name: 'db',
  status: 'ready',
  createdAt: 1,
  geometry: { namespaceSlots: 16, objectIds: 16, dataSizeBytes: 65536 },
  maxFenceHoldMs: 30_000,
  members: [
    { volume: 'db.dc-2', role: 'data', ordinal: 2, state: 'active', addedAt: 1 },
    { volume: 'db.ols', role: 'ols', ordinal: 0, state: 'active', addedAt: 1 },
    { volume: 'db.dc-1', role: 'data', ordinal: 1, state: 'active', addedAt: 1 },
    { volume: 'db.dc-9', role: 'data', ordinal: 9, state: 'retired', addedAt: 1 },
    { volume: 'db.ns', role: 'namespace', ordinal: 0, state: 'active', addedAt: 1 },
  ],
  nextOrdinal: 10,
  group: null,
  change: null,
  lastGroup: null,
  readRedirect: null,
}

const entry: SnapshotEntry = {
  id: 7,
  site: 'east',
  volume: 'db',
  name: 'S',
  createdAt: 2,
  valid: true,
  allowedClients: null,
  members: [
    { volume: 'db.ns', role: 'namespace', ordinal: 0, snapshot: 'S', timestamp: 2 },
    { volume: 'db.ols', role: 'ols', ordinal: 0, snapshot: 'S', timestamp: 2 },
    { volume: 'db.dc-1', role: 'data', ordinal: 1, snapshot: 'S', timestamp: 2 },
  ],
}

function fold(events: readonly VolumeJournalEvent[], from: VolumeCatalogState = emptyVolumeCatalog): VolumeCatalogState {
  return events.reduce((state, event) => produce(state, (draft: Draft<VolumeCatalogState>) => reduceVolumeCatalog(draft, event)), from)
}

const state = fold([{ type: 'volume.registered', data: record }, { type: 'volume.snapshotAdopted', data: entry }])

describe('constituent layout', () => {
  it('round-trips stubs of any path that fits, and tells empty and removed slots apart', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' }), fc.integer({ min: 1, max: 0xffffffff }), (path, id) => {
        fc.pre(new TextEncoder().encode(path).length <= MAX_PATH_BYTES)
        expect(decodeSlot(encodeSlot({ path, id }), { volume: 'v', slot: 0 })).toEqual({ state: 'used', path, id })
      }),
    )
    expect(decodeSlot(encodeSlot(undefined), { volume: 'v', slot: 0 })).toEqual({ state: 'tombstone' })
    expect(decodeSlot(new Uint8Array(256), { volume: 'v', slot: 0 })).toEqual({ state: 'empty' })
    const damaged = encodeSlot({ path: 'a', id: 1 })
    damaged[0] = 9
    expect(() => decodeSlot(damaged, { volume: 'v', slot: 3 })).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
  })

  it('round-trips locators and refuses a record that names another id', () => {
    const locator = { id: 5, ordinal: 3, offset: 2 ** 40, length: 123, crc: 0xdeadbeef }
    expect(decodeLocator(encodeLocator(locator), 5, 'ols')).toEqual(locator)
    expect(decodeLocator(encodeLocator(undefined), 5, 'ols')).toBeUndefined()
    expect(() => decodeLocator(encodeLocator(locator), 6, 'ols')).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
  })

  it('checks objects against their locator and CRC-32', () => {
    const data = new TextEncoder().encode('payload')
    const encoded = encodeObject(4, data)
    expect(encoded.crc).toBe(crc32(data))
    const locator = { id: 4, ordinal: 1, offset: 4096, length: data.length, crc: encoded.crc }
    expect(decodeObject(encoded.bytes, locator, 'dc')).toEqual(data)
    const flipped = encoded.bytes.slice()
    flipped[20] = (flipped[20] ?? 0) ^ 1
    expect(() => decodeObject(flipped, locator, 'dc')).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
    expect(() => decodeObject(encoded.bytes, { ...locator, id: 5 }, 'dc')).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
  })

  it('hashes paths with FNV-1a (stable across runs: placement and probing depend on it)', () => {
    expect(pathHash('')).toBe(0x811c9dc5)
    expect(pathHash('a')).toBe(0xe40c292c)
  })
})

describe('volume deciders', () => {
  it('orders a group namespace, OLS, data constituents by ordinal, leaving retired members out', () => {
    expect(constituentFenceOrder(record).map((m) => m.volume)).toEqual(['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2'])
  })

  it('opens one group per volume, never during a change, never over a taken snapshot name; reopening is a no-op', () => {
    const open = { site: 'east', name: 'db', id: 'g1', snapshotName: 'T', at: 100, maxFenceHoldMs: 5_000 }
    const decided = decideOpenGroup(state, open)
    expect(E.isRight(decided) && decided.right[0]).toMatchObject({ type: 'volume.groupOpened', data: { group: { id: 'g1', snapshotId: 8, deadline: 5_100 } } })
    const opened = fold(E.isRight(decided) ? decided.right : [], state)
    expect(decideOpenGroup(opened, open)).toEqual(E.right([]))
    expect(decideOpenGroup(opened, { ...open, id: 'g2' })).toMatchObject({ left: { code: 'E_CONFLICT' } })
    expect(decideOpenGroup(state, { ...open, snapshotName: 'S' })).toMatchObject({ left: { code: 'E_CONFLICT' } })
    expect(decideOpenGroup(state, { ...open, name: 'other' })).toMatchObject({ left: { code: 'E_NOT_FOUND' } })
    const changing = fold([{ type: 'volume.changeStarted', data: { site: 'east', name: 'db', change: { id: 'c', kind: 'expand', ordinals: [10], since: 1 } } }], state)
    expect(decideOpenGroup(changing, open)).toMatchObject({ left: { code: 'E_CONFLICT' } })
    expect(decideBeginShrink(opened, 'east', 'db', 's', 1, 1)).toMatchObject({ left: { code: 'E_CONFLICT' } })
  })

  it('keeps at least one data constituent and refuses unknown ordinals', () => {
    expect(decideBeginShrink(state, 'east', 'db', 's', 2, 1)).toMatchObject({ left: { code: 'E_PRECONDITION' } })
    expect(decideBeginShrink(state, 'east', 'db', 's', [1, 2], 1)).toMatchObject({ left: { code: 'E_PRECONDITION' } })
    expect(decideBeginShrink(state, 'east', 'db', 's', [9], 1)).toMatchObject({ left: { code: 'E_NOT_FOUND' } })
    expect(decideBeginShrink(state, 'east', 'db', 's', 1, 1)).toMatchObject({ right: [{ data: { change: { ordinals: [2] } } }] })
  })

  it('never redirects to an invalid or foreign snapshot', () => {
    expect(decideSetRedirect(state, 'east', 'db', 7)).toMatchObject({ right: [{ type: 'volume.redirectSet' }] })
    const invalid = fold([{ type: 'volume.snapshotInvalidated', data: { id: 7 } }], state)
    expect(decideSetRedirect(invalid, 'east', 'db', 7)).toMatchObject({ left: { code: 'E_PRECONDITION' } })
    expect(decideSetRedirect(state, 'east', 'db', 8)).toMatchObject({ left: { code: 'E_NOT_FOUND' } })
    expect(decideRegister(state, record)).toMatchObject({ left: { code: 'E_CONFLICT' } })
  })

  it('every decided event passes the journal codec, and unknown ids fold to nothing', () => {
    const events: VolumeJournalEvent[] = [
      { type: 'volume.groupAborted', data: { site: 'east', name: 'db', group: 'nope', code: 'E_TIMEOUT', at: 1 } },
      { type: 'volume.snapshotRemoved', data: { id: 99 } },
      { type: 'volume.ready', data: { site: 'east', name: 'ghost', change: 'x' } },
    ]
    for (const event of events) expect(VolumeJournalEventCodec.is(event)).toBe(true)
    expect(fold(events, state)).toEqual(state)
  })
})

describe('snapshot access path', () => {
  it('chooses the active file system, the named snapshot, or the redirect target for id 0', () => {
    expect(chooseHandleSource(state, record, ACTIVE_FILE_SYSTEM)).toEqual(E.right({ kind: 'active' }))
    expect(chooseHandleSource(state, record, 7)).toMatchObject({ right: { kind: 'snapshot', redirected: false, entry: { id: 7 } } })
    expect(chooseHandleSource(state, { ...record, readRedirect: 7 }, 0)).toMatchObject({ right: { kind: 'snapshot', redirected: true } })
    expect(chooseHandleSource(state, record, 3)).toMatchObject({ left: { code: 'E_NOT_FOUND' } })
  })

  it('serves a replica only through its redirect: refused (E_UNAVAILABLE) before its first complete snapshot, never around it', () => {
    const replica = { ...record, replicaOf: 'm1' }
    expect(chooseHandleSource(state, replica, ACTIVE_FILE_SYSTEM)).toMatchObject({ left: { code: 'E_UNAVAILABLE', details: { reason: 'replicaNotConsistent', replicaOf: 'm1' } } })
    expect(chooseHandleSource(state, { ...replica, readRedirect: 7 }, ACTIVE_FILE_SYSTEM)).toMatchObject({ right: { kind: 'snapshot', redirected: true, entry: { id: 7 } } })
    expect(chooseHandleSource(state, replica, 7)).toMatchObject({ right: { kind: 'snapshot', redirected: false } })
    for (const access of ['write', 'live'] as const) {
      expect(checkClientAccess(replica, access)).toMatchObject({ left: { code: 'E_PRECONDITION', details: { reason: 'replica', replicaOf: 'm1' } } })
      expect(checkClientAccess(record, access)).toEqual(E.right(record))
    }
  })

  it('marks and unmarks a replica once; the mark survives the journal codec and the fold', () => {
    const marked = decideSetReplica(state, 'east', 'db', 'm1')
    if (E.isLeft(marked)) throw marked.left
    expect(marked.right.every((e) => VolumeJournalEventCodec.is(e))).toBe(true)
    const after = fold(marked.right, state)
    expect(after.volumes['east/db']?.replicaOf).toBe('m1')
    expect(decideSetReplica(after, 'east', 'db', 'm1')).toEqual(E.right([]))
    const cleared = decideSetReplica(after, 'east', 'db', null)
    if (E.isLeft(cleared)) throw cleared.left
    expect(fold(cleared.right, after).volumes['east/db']).toEqual(record)
    expect(decideSetReplica(state, 'east', 'ghost', 'm1')).toMatchObject({ left: { code: 'E_NOT_FOUND' } })
  })

  it('denies clients a snapshot does not list, and refuses invalid entries', () => {
    const limited = { ...entry, allowedClients: ['c1'] }
    expect(checkSnapshotAccess(limited, 'c1')).toEqual(E.right(limited))
    expect(checkSnapshotAccess(limited, 'c2')).toMatchObject({ left: { code: 'E_PRECONDITION', details: { reason: 'accessDenied' } } })
    expect(checkSnapshotAccess({ ...entry, valid: false }, 'c1')).toMatchObject({ left: { code: 'E_PRECONDITION', details: { reason: 'invalid' } } })
  })

  it('maps each constituent to its own member snapshot; a data constituent outside the snapshot is E_NOT_FOUND', () => {
    const view = snapshotView(entry)
    expect(view.namespace).toEqual({ volume: 'db.ns', snapshot: 'S' })
    expect(view.data(1)).toEqual({ volume: 'db.dc-1', snapshot: 'S' })
    expect(() => view.data(2)).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }))
  })
})
