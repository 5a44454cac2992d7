import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { DrError, JournaledStore, ManualClock } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import {
  FreezeJournalEventCodec,
  FreezeStateCodec,
  IoGate,
  UpdateLocks,
  WriteBackCache,
  WriteJournal,
  blockRuns,
  chooseCommonSnapshot,
  decideFinish,
  decideOwnActors,
  decideProtect,
  decideRestorePlan,
  decideStartRestore,
  emptyFreezeState,
  heldIoError,
  lockRetryDelay,
  reduceFreezeState,
  type FreezeState,
  type ProtectionConfig,
} from '../../../src/modules/freeze/index.js'

const config: ProtectionConfig = {
  site: 'east',
  volume: 'db',
  mountPath: '/mnt/data',
  identity: 'id',
  sources: [],
  freezeTimeoutMs: null,
  actorTimeoutMs: null,
  probeEveryMs: null,
  mountOptions: {},
  readOnly: false,
  lockRetry: { minDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 },
}

function fold(events: ReturnType<typeof decideProtect>, state: FreezeState = emptyFreezeState): FreezeState {
  if (isLeft(events)) throw events.left
  let next = state
  for (const event of events.right) {
    const draft = structuredClone(next) as FreezeState
    reduceFreezeState(draft as never, event)
    next = draft
  }
  return next
}

describe('pure decisions', () => {
  it('one restore per volume: a second restore conflicts, the same one is idempotent, finishing frees the volume', () => {
    let state = fold(decideProtect(emptyFreezeState, 'east/db', config))
    state = fold(decideStartRestore(state, 'east/db', { restoreId: 'r1', workflowId: 'w1', startedAt: 1, channel: 'probe' }), state)
    expect(decideStartRestore(state, 'east/db', { restoreId: 'r1', workflowId: 'w1', startedAt: 2, channel: 'probe' })).toEqual({ _tag: 'Right', right: [] })
    const second = decideStartRestore(state, 'east/db', { restoreId: 'r2', workflowId: 'w2', startedAt: 2, channel: 'probe' })
    expect(isLeft(second) && second.left.code).toBe('E_CONFLICT')
    state = fold(decideOwnActors(state, 'east/db', 'r1', [{ id: 'p1', frozenAt: 1, late: false }]), state)
    expect(decideOwnActors(state, 'east/db', 'r1', [{ id: 'p1', frozenAt: 5, late: true }])).toEqual({ _tag: 'Right', right: [] })
    const both = decideOwnActors(state, 'east/db', 'r1', [{ id: 'p1', frozenAt: 5, late: true }, { id: 'p2', frozenAt: 5, late: true }, { id: 'p2', frozenAt: 5, late: true }])
    expect(isRight(both) && both.right).toEqual([{ type: 'restore.actorsOwned', data: { key: 'east/db', restoreId: 'r1', actors: [{ id: 'p2', frozenAt: 5, late: true }] } }])
    expect(decideOwnActors(state, 'east/db', 'r2', [{ id: 'p3', frozenAt: 5, late: true }])).toEqual({ _tag: 'Right', right: [] })
    const summary = { restoreId: 'r1', outcome: 'restored' as const, startedAt: 1, finishedAt: 3, source: null, freezeWindowMs: 2, code: null, message: null }
    state = fold(decideFinish(state, 'east/db', summary), state)
    expect(state.protections['east/db']).toMatchObject({ status: 'protected', restore: null, lastRestore: summary })
    expect(decideStartRestore(state, 'east/db', { restoreId: 'r1', workflowId: 'w1', startedAt: 9, channel: 'probe' })).toEqual({ _tag: 'Right', right: [] })
    expect(isRight(decideStartRestore(state, 'east/db', { restoreId: 'r2', workflowId: 'w2', startedAt: 9, channel: 'probe' }))).toBe(true)
  })

  it('the restore plan needs a manageable host and a reachable source, and names every reason otherwise', () => {
    const snap = { kind: 'snapshot' as const, snapshot: 's' }
    const standby = { kind: 'standby' as const, volume: 'b' }
    expect(decideRestorePlan({ hostReachable: true, hostReason: null, sources: [{ source: snap, reachable: false, reason: 'gone' }, { source: standby, reachable: true, reason: null }] })).toEqual({ _tag: 'Right', right: [standby] })
    const host = decideRestorePlan({ hostReachable: false, hostReason: 'kernel panic', sources: [{ source: snap, reachable: true, reason: null }] })
    expect(isLeft(host) && host.left).toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'host' } })
    const none = decideRestorePlan({ hostReachable: true, hostReason: null, sources: [] })
    expect(isLeft(none) && none.left.details).toEqual({ reason: 'no-source' })
    const unreachable = decideRestorePlan({ hostReachable: true, hostReason: null, sources: [{ source: snap, reachable: false, reason: 'gone' }] })
    expect(isLeft(unreachable) && unreachable.left.message).toContain('snapshot "s": gone')
  })

  it('lock retry delays stay within [min, max] and follow the random number (property)', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.nat(10_000), fc.double({ min: 0, max: 1, noNaN: true }), (a, b, r) => {
        const policy = { minDelayMs: Math.min(a, b), maxDelayMs: Math.max(a, b) }
        const delay = lockRetryDelay(policy, r)
        expect(delay).toBeGreaterThanOrEqual(policy.minDelayMs)
        expect(delay).toBeLessThanOrEqual(policy.maxDelayMs)
        expect(lockRetryDelay(policy, r)).toBe(delay)
      }),
    )
  })

  it('block runs cover exactly the given blocks, in order, none longer than the limit (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(500)), fc.integer({ min: 1, max: 16 }), (raw, limit) => {
        const blocks = [...raw].sort((x, y) => x - y)
        const runs = blockRuns(blocks, limit)
        expect(runs.flatMap((run) => Array.from({ length: run.count }, (_, i) => run.start + i))).toEqual(blocks)
        expect(runs.every((run) => run.count <= limit)).toBe(true)
      }),
    )
  })

  it('the common snapshot is the newest shared one up to the target', () => {
    expect(chooseCommonSnapshot(['a', 'b', 'c'], ['a', 'b', 'c', 'd'], 'live')).toBe('c')
    expect(chooseCommonSnapshot(['a', 'b', 'c'], ['a', 'b', 'c', 'd'], 'b')).toBe('b')
    expect(chooseCommonSnapshot(['x'], ['a', 'b'], 'live')).toBeNull()
  })

  it('held I/O fails with a code that says why, and never with E_TIMEOUT, which only a freeze timeout gives', () => {
    expect(heldIoError('k', new DrError('E_PRECONDITION', 'no source')).code).toBe('E_PRECONDITION')
    expect(heldIoError('k', new DrError('E_CONFLICT', 'path taken')).code).toBe('E_CONFLICT')
    expect(heldIoError('k', new DrError('E_CORRUPT', 'bad')).code).toBe('E_UNAVAILABLE')
    expect(heldIoError('k', new DrError('E_TIMEOUT', 'adapter timed out')).code).toBe('E_UNAVAILABLE')
  })

  it('a damaged protections journal is detected on replay, not trusted', async () => {
    const stateStore = memoryStateStore()
    await stateStore.append('freeze/protections', 0, [{ type: 'protection.set', data: { key: 'east/db', config: { ...config, freezeTimeoutMs: 'soon' } } }])
    const opened = JournaledStore.open({ stateStore, stream: 'freeze/protections', initial: emptyFreezeState, reducer: reduceFreezeState, eventCodec: FreezeJournalEventCodec, stateCodec: FreezeStateCodec })
    await expect(opened).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })
})

describe('the I/O gate', () => {
  it('holds operations while frozen and runs them in arrival order on open; reports the window', async () => {
    const clock = new ManualClock()
    const gate = new IoGate({ clock, timeoutMs: null })
    const order: number[] = []
    gate.close()
    const ops = [1, 2, 3].map((n) => gate.run(async () => order.push(n)))
    await clock.advance(40)
    expect(order).toEqual([])
    expect(gate.pending).toBe(3)
    expect(gate.open()).toEqual({ released: 3, windowMs: 40 })
    await Promise.all(ops)
    expect(order).toEqual([1, 2, 3])
  })

  it('an intercepted failure is re-queued at its arrival position and re-runs after the thaw', async () => {
    const clock = new ManualClock()
    const gate = new IoGate({ clock, timeoutMs: null })
    const order: string[] = []
    let fail = true
    const first = gate.run(
      async () => {
        if (fail) throw new DrError('E_ADAPTER', 'lost')
        order.push('first')
      },
      () => 'hold',
    )
    await clock.advance(0)
    expect(gate.frozen).toBe(true)
    const second = gate.run(async () => order.push('second'))
    fail = false
    gate.open()
    await Promise.all([first, second])
    expect(order).toEqual(['first', 'second'])
  })

  it('an operation held once is told so when it fails again, and gets the error the decision gives', async () => {
    const clock = new ManualClock()
    const gate = new IoGate({ clock, timeoutMs: null })
    const seen: boolean[] = []
    const run = gate.run(
      async () => {
        throw new DrError('E_ADAPTER', 'lost')
      },
      (error, requeued) => (seen.push(requeued), requeued ? new DrError('E_UNAVAILABLE', `uncured: ${error.message}`) : 'hold'),
    )
    await clock.advance(0)
    expect(gate.frozen).toBe(true)
    gate.open()
    await expect(run).rejects.toMatchObject({ code: 'E_UNAVAILABLE', message: 'uncured: lost' })
    expect(seen).toEqual([false, true])
  })

  it('each held operation times out on its own, later ones wait again, and nothing settles twice', async () => {
    const clock = new ManualClock()
    const timeouts: number[] = []
    const gate = new IoGate({ clock, timeoutMs: 100, onTimeout: (n) => timeouts.push(n) })
    gate.close()
    const early = gate.run(async () => 'early').catch((e: DrError) => e.code)
    await clock.advance(60)
    const late = gate.run(async () => 'late').catch((e: DrError) => e.code)
    await clock.advance(40)
    expect(await early).toBe('E_TIMEOUT')
    await clock.advance(30)
    gate.open()
    expect(await late).toBe('late')
    expect(timeouts).toEqual([1])
    expect(gate.fail(new DrError('E_UNAVAILABLE', 'x'))).toBe(0)
  })

  it('the freeze window after a timeout starts at the first operation still held, not at one that left', async () => {
    const clock = new ManualClock()
    const gate = new IoGate({ clock, timeoutMs: 100 })
    gate.close()
    const early = gate.run(async () => 'early').catch((e: DrError) => e.code)
    await clock.advance(100)
    expect(await early).toBe('E_TIMEOUT')
    expect(gate.heldSince).toBeNull()
    await clock.advance(50)
    const late = gate.run(async () => 'late')
    await clock.advance(50)
    expect(gate.open()).toEqual({ released: 1, windowMs: 50 })
    expect(await late).toBe('late')
  })

  it('fail releases every waiting operation with the error; drain waits for running ones', async () => {
    const gate = new IoGate({ clock: new ManualClock(), timeoutMs: null })
    let finish: () => void = () => undefined
    const running = gate.run(() => new Promise<void>((resolve) => (finish = resolve)))
    gate.close()
    const waiting = gate.run(async () => 1)
    let drained = false
    const drain = gate.drain().then(() => (drained = true))
    await Promise.resolve()
    expect(drained).toBe(false)
    finish()
    await running
    await drain
    expect(gate.fail(new DrError('E_UNAVAILABLE', 'gone'))).toBe(1)
    await expect(waiting).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
  })
})

describe('the write-back cache and its journal', () => {
  it('reads see cached writes over the volume data, newest last; coverage is exact', () => {
    const cache = new WriteBackCache()
    cache.put(1, 0, new Uint8Array([1, 1, 1, 1]), 0)
    cache.put(2, 2, new Uint8Array([2, 2, 2, 2]), 0)
    expect(cache.covers(0, 6)).toBe(true)
    expect(cache.covers(0, 7)).toBe(false)
    expect([...cache.overlay(0, 8, new Uint8Array(8).fill(9))]).toEqual([1, 1, 2, 2, 2, 2, 9, 9])
    cache.remove(new Set([1]))
    expect(cache.dirtyBytes).toBe(4)
    expect(cache.size).toBe(1)
  })

  it('a journal is saved in chunks and sealed, a half-written one starts over, a removed one is never replayed', async () => {
    const store = memoryStateStore()
    const journal = new WriteJournal(store)
    const big = Array.from({ length: 5 }, (_, i) => ({ seq: i, offset: i * 200_000, at: i, data: new Uint8Array(200_000).fill(i) }))
    await store.append(WriteJournal.streamOf('r'), 0, [{ type: 'journal.writes', data: { entries: [{ seq: 99, offset: 0, at: 0, data: '' }] } }])
    await expect(journal.load('r')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    const summary = await journal.save('r', big)
    expect(summary).toMatchObject({ count: 5, bytes: 1_000_000, oldestAt: 0 })
    expect((await store.read(WriteJournal.streamOf('r'))).length).toBeGreaterThan(3)
    const loaded = await journal.load('r')
    expect(loaded.writes.map((w) => w.seq)).toEqual([0, 1, 2, 3, 4])
    expect(loaded.writes[3]?.data[0]).toBe(3)
    expect((await journal.save('r', [])).count).toBe(5)
    expect(await journal.save('empty', [])).toMatchObject({ count: 0, oldestAt: null })
    expect(await store.read(WriteJournal.streamOf('empty'))).toEqual([])
    await expect(journal.load('empty')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await journal.remove('r')
    await journal.remove('r')
    expect((await journal.load('r')).removed).toBe(true)
  })

  it('a journal whose seal does not match its writes is corrupt', async () => {
    const store = memoryStateStore()
    await store.append(WriteJournal.streamOf('x'), 0, [{ type: 'journal.sealed', data: { count: 2, bytes: 0 } }])
    await expect(new WriteJournal(store).load('x')).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })
})

describe('the update lock', () => {
  it('one holder at a time, re-acquiring is a no-op, releasing by a non-holder does nothing, and contention gives up after the bound', async () => {
    const clock = new ManualClock()
    const locks = new UpdateLocks({ stateStore: memoryStateStore(), clock, random: () => 0 })
    const policy = { minDelayMs: 10, maxDelayMs: 10, maxAttempts: 2 }
    expect(await locks.acquire('east', 'db', 'a', policy)).toMatchObject({ holder: 'a', attempts: 1 })
    expect(await locks.acquire('east', 'db', 'a', policy)).toMatchObject({ holder: 'a' })
    expect(await locks.release('east', 'db', 'b')).toBe(false)
    const contended: number[] = []
    const b = locks.acquire('east', 'db', 'b', policy, { onContended: (_holder, attempt) => contended.push(attempt) }).catch((e: DrError) => e.code)
    await clock.advance(10)
    expect(await b).toBe('E_CONFLICT')
    expect(contended).toEqual([1])
    expect(await locks.release('east', 'db', 'a')).toBe(true)
    expect((await locks.holderOf('east', 'db'))).toBeNull()
  })
})
