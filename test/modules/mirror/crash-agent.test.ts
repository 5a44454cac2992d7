import { describe, expect, it } from 'vitest'
import { BS, block, blockHashes, settle, token, until } from '../../fixtures/mirror-world.js'
import { crashableWorld, type CrashVerdict, type StorageCall } from '../../fixtures/mirror-crash.js'

const HALF_HOUR = 1_800_000

/** Which storage calls of the destination's replica (`db`) or staging volume a rule looks at. */
const onWest = (call: StorageCall, method: string, volume = 'db'): boolean => call.site === 'west' && call.method === method && call.args[0] === volume

/** Counts the calls a predicate accepts and fires on the `nth` of them. */
function nth(n: number, accepts: (call: StorageCall) => boolean, verdict: 'crash' | 'crashAfter'): (call: StorageCall) => CrashVerdict {
  let seen = 0
  return (call) => (accepts(call) && ++seen === n ? verdict : undefined)
}

interface Scenario {
  /** Playback batched every 30 minutes (staged path), or immediate (applied on arrival). */
  readonly batched?: boolean
  /** Kill during the initial copy instead of during delta set 2. */
  readonly initialCopy?: boolean
  /** The rule that kills the first process (armed only while the step under test runs). */
  readonly kill: (call: StorageCall) => CrashVerdict
}

/**
 * Replicates east's `db` to west, kills the process (no `close()`) at the storage call `kill` picks while delta set
 * 2 (or the initial copy) is on its way, starts a new process and lets it finish. Returns the world and the
 * delta set that was in flight.
 */
async function killedDuring(scenario: Scenario) {
  let armed = false
  const creates: string[] = []
  const w = await crashableWorld({
    sizeBlocks: 256,
    onCall: (call) => {
      if (call.site === 'west' && call.method === 'createSnapshot') creates.push(String(call.args[1]))
      return armed && call.incarnation === 1 ? scenario.kill(call) : undefined
    },
  })
  const first = await w.start()
  for (let b = 0; b < 20; b++) await w.raw['east']!.write('db', b * BS, block(b + 1), token)
  if (scenario.initialCopy === true) armed = true
  await first.mirrors.create({
    id: 'm',
    source: { site: 'east', volume: 'db' },
    destination: { site: 'west' },
    cut: { every: '10h', probe: '1h' },
    transfer: { chunkSize: 4 * BS },
    ...(scenario.batched === true ? { playback: { every: '30m' } } : {}),
  })
  const n = scenario.initialCopy === true ? 1 : 2
  if (n === 2) {
    await until(async () => (await first.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    for (let b = 40; b < 64; b++) await w.raw['east']!.write('db', b * BS, block(b + 100), token)
    armed = true
    await first.mirrors.cutNow('m')
  }
  for (let i = 0; i < 20 && !first.isDead(); i++) {
    await settle()
    if (scenario.batched === true) await w.clock.advance(HALF_HOUR)
  }
  expect(first.isDead(), 'the rule killed the process').toBe(true)
  armed = false
  const second = await w.start()
  for (let i = 0; i < 120 && (await second.mirrors.status('m')).lastPlayedBack !== n; i++) {
    await settle()
    await w.clock.advance(scenario.batched === true ? HALF_HOUR : 1_000)
  }
  const status = await second.mirrors.status('m')
  return { w, second, n, status, creates }
}

/** What must hold after any kill: the delta set applied once and whole, the replica read-only, nothing fenced. */
async function invariants(result: Awaited<ReturnType<typeof killedDuring>>): Promise<void> {
  const { w, second, n, status, creates } = result
  expect(status.lastPlayedBack).toBe(n)
  expect(await blockHashes(w.raw['west']!, 'db')).toEqual(await blockHashes(w.raw['east']!, 'db', `drkit.m.m.ds-${n}`))
  expect(await blockHashes(w.raw['west']!, 'db', `drkit.m.m.ds-${n}`)).toEqual(await blockHashes(w.raw['east']!, 'db', `drkit.m.m.ds-${n}`))
  expect(creates.filter((name) => name === `drkit.m.m.ds-${n}`), `delta set ${n} is committed exactly once`).toHaveLength(1)
  expect(w.violations).toEqual([])
  expect(await w.writableNow()).toEqual(['east'])
  expect(await w.raw['east']!.isFenced('db')).toBe(false)
  expect(await w.raw['west']!.getConfig('db.mirror-staging', 'drkit.mirror.staging')).toMatchObject({ sets: [] })
  await second.module.close()
}

describe('mirror crash safety: the process (coordinator and agents) killed inside the agents\' work, then restarted', () => {
  it.each([1, 2, 4])('inside an apply on arrival (killed before write %i of the delta set): the set resumes at the first chunk not written and is committed once', async (k) => {
    await invariants(await killedDuring({ kill: nth(k, (call) => onWest(call, 'writeRanges'), 'crash') }))
  })

  it.each([1, 3])('inside an apply on arrival (killed right after write %i landed, before its progress was recorded): the chunk is written again, the set committed once', async (k) => {
    await invariants(await killedDuring({ kill: nth(k, (call) => onWest(call, 'writeRanges'), 'crashAfter') }))
  })

  it('inside an apply on arrival, after the set was committed but before it was acknowledged: the restarted destination says it has it, nothing is applied twice', async () => {
    await invariants(await killedDuring({ kill: nth(1, (call) => call.site === 'west' && call.method === 'createSnapshot' && call.args[1] === 'drkit.m.m.ds-2', 'crashAfter') }))
  })

  it('inside a staged playback (killed after its write landed, before the delta set was committed): the replica is rolled back to delta set 1 and the set played again, once', async () => {
    await invariants(await killedDuring({ batched: true, kill: nth(1, (call) => onWest(call, 'writeRanges'), 'crashAfter') }))
  })

  it.each([1, 3])('between staging write %i and the index update that counts it: the chunk is received again and staged once', async (k) => {
    await invariants(await killedDuring({ batched: true, kill: nth(k, (call) => onWest(call, 'write', 'db.mirror-staging'), 'crashAfter') }))
  })

  it.each([
    ['before write 2', 2, 'crash'],
    ['right after write 3 landed', 3, 'crashAfter'],
  ] as const)('during the initial full copy in place (%s): the copy resumes and ends equal to the source', async (_, k, verdict) => {
    await invariants(await killedDuring({ initialCopy: true, kill: nth(k, (call) => onWest(call, 'writeRanges'), verdict) }))
  })
})

describe('mirror: storage faults in the agents are retried and the delta set still arrives once', () => {
  it.each([
    ['a replica write', (call: StorageCall) => onWest(call, 'writeRanges'), false],
    ['a progress record', (call: StorageCall) => onWest(call, 'putConfig'), false],
    ['a staging write', (call: StorageCall) => onWest(call, 'write', 'db.mirror-staging'), true],
    ['a staging index update', (call: StorageCall) => onWest(call, 'putConfig', 'db.mirror-staging'), true],
  ] as const)('%s that fails once', async (_, accepts, batched) => {
    let armed = false
    let failed = 0
    const w = await crashableWorld({
      sizeBlocks: 256,
      onCall: (call) => {
        if (!armed || failed > 0 || !accepts(call)) return undefined
        failed++
        return 'fail'
      },
    })
    const run = await w.start()
    for (let b = 0; b < 20; b++) await w.raw['east']!.write('db', b * BS, block(b + 1), token)
    await run.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, transfer: { chunkSize: 4 * BS }, ...(batched ? { playback: { every: '30m' } } : {}) })
    await until(async () => (await run.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    for (let b = 40; b < 64; b++) await w.raw['east']!.write('db', b * BS, block(b + 100), token)
    armed = true
    await run.mirrors.cutNow('m')
    for (let i = 0; i < 60 && (await run.mirrors.status('m')).lastPlayedBack !== 2; i++) {
      await settle()
      await w.clock.advance(batched ? HALF_HOUR : 1_000)
    }
    expect(failed).toBe(1)
    expect((await run.mirrors.status('m')).lastPlayedBack).toBe(2)
    expect(w.names('mirror.deltaSetApplied').filter((e) => e.payload['deltaSet'] === 2)).toHaveLength(1)
    expect(await blockHashes(w.raw['west']!, 'db')).toEqual(await blockHashes(w.raw['east']!, 'db', 'drkit.m.m.ds-2'))
    expect(w.violations).toEqual([])
    await run.module.close()
  })
})
