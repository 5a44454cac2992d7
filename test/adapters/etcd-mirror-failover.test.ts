/**
 * Two drkit coordinators in separate processes against one etcd, running the REAL mirror failover: each child
 * (`etcd-mirror-coordinator.ts`) runs `createDrSystem` on `etcdCoordination`, with sites east and west on storage
 * both processes share and an in-process memory network. The leader replicates east → west and fails over.
 *
 * - It is SIGKILLed at every step of the failover workflow in turn (once the step's side effects happened and before
 *   its result is journaled), on local storage pools; the standby takes the lease after the TTL, its `createDrSystem`
 *   resumes the failover, and every effect is checked to have happened exactly once — in etcd's journal and on the
 *   pools, opened here after both coordinators are gone.
 * - It is SIGSTOPped inside the failover (same moment), on storage served by this process; the standby completes the
 *   failover; the leader is resumed (SIGCONT) and goes on: its journal append and every storage call it still makes
 *   are refused, its failover call ends with `E_FENCED`, and nothing was recorded as failed or compensated.
 *
 * The new leader's `createDrSystem` presents its token to every port, so the storage refuses the old leader's token
 * everywhere; the tests check that with the old leader's most harmful calls.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { FenceToken } from '../../src/kernel/fencing.js'
import { etcdStateStore } from '../../src/adapters/etcd/etcd-state-store.js'
import { openLocalStorage } from '../../src/adapters/local/local-storage.js'
import { memoryStorage } from '../../src/adapters/memory/storage.js'
import type { StoragePort } from '../../src/ports/storage.js'
import { FAILOVER_WORKFLOW } from '../../src/modules/mirror/failover.js'
import { MIRROR_LABEL } from '../../src/modules/mirror/naming.js'
import { EtcdTestCluster, etcdEndpoints } from '../fixtures/etcd-endpoints.js'
import { CoordinatorProcess } from '../fixtures/etcd-coordinator-harness.js'
import { SharedStorage } from '../fixtures/etcd-remote-storage.js'
import type { MirrorRunCommand, RunReport } from '../fixtures/etcd-coordinator-protocol.js'
import { BS, blockHashes } from '../fixtures/mirror-world.js'

const CHILD = fileURLToPath(new URL('../fixtures/etcd-mirror-coordinator.ts', import.meta.url))
const SCOPE = 'drkit/system'

const cluster = new EtcdTestCluster()
const processes: CoordinatorProcess[] = []
const dirs: string[] = []

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()))
  await cluster.cleanUp()
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

async function coordinator(name: string): Promise<CoordinatorProcess> {
  etcdEndpoints()
  const started = new CoordinatorProcess(name, CHILD)
  processes.push(started)
  await started.ready()
  return started
}

type Pools = NonNullable<MirrorRunCommand['pools']>

/** A fresh run: its etcd prefix and the two pool directories. */
async function freshRun(run: string): Promise<{ run: string; prefix: string; pools: Pools }> {
  const base = await mkdtemp(join(tmpdir(), `drkit-mirror-${run}-`))
  dirs.push(base)
  return { run, prefix: cluster.prefix(`mirror-${run}`), pools: { east: join(base, 'east'), west: join(base, 'west') } }
}

/** Both sites' storage, as the coordinators left it, and how to let go of it. */
interface Sites {
  readonly east: StoragePort
  readonly west: StoragePort
  close(): Promise<void>
}

/** The local pools of a run, opened here once both coordinators are gone. */
async function openPools(pools: Pools): Promise<Sites> {
  const east = await openLocalStorage({ dir: pools.east, fsync: false })
  const west = await openLocalStorage({ dir: pools.west, fsync: false })
  return { east, west, close: async () => void (await Promise.all([east.close(), west.close()])) }
}

type Replicated = Extract<RunReport, { op: 'replicated' }>

/** What etcd's journal says: each failover workflow run's records, and the relationship's failover records. */
async function journalOf(prefix: string) {
  const store = etcdStateStore({ hosts: etcdEndpoints(), prefix })
  try {
    const streams = await store.listStreams(`workflow/${FAILOVER_WORKFLOW}:`)
    const runs = await Promise.all(
      streams.map(async (stream) => {
        const records = await store.read(stream)
        const count = (type: string): number => records.filter((r) => r.type === type).length
        return {
          started: count('workflow.started'),
          completed: count('workflow.completed'),
          failures: count('step.failed') + count('workflow.failed'),
          compensated: count('step.compensated'),
          steps: records.filter((r) => r.type === 'step.completed').map((r) => (r.data as { name: string }).name),
        }
      }),
    )
    const relationship = await store.read('mirror/relationships')
    const of = (type: string) => relationship.filter((r) => r.type === type).map((r) => r.data as { epoch?: number; operation?: { kind: string } })
    return {
      runs,
      failoversStarted: of('mirror.operationStarted').filter((d) => d.operation?.kind === 'failover').length,
      failedOver: of('mirror.failedOver').map((d) => d.epoch),
      operationsFailed: of('mirror.operationFailed').length,
    }
  } finally {
    await store.close()
  }
}

const codeOf = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'accepted',
    (error: unknown) => (error as { code?: string }).code ?? String(error),
  )

/**
 * The storage as both coordinators left it: writability, the restart points on west, west's data (live and at its
 * restart point) and east's, and what each site answers to the old leader's token.
 */
async function sitesOf(open: () => Promise<Sites>, oldToken: FenceToken | null) {
  const { east, west, close } = await open()
  try {
    const restartPoints = (await west.listSnapshots('db')).filter((s) => s.labels[MIRROR_LABEL.kind] === 'restart-point')
    const seen = {
      eastWritable: (await east.volumeInfo('db')).writable,
      westWritable: (await west.volumeInfo('db')).writable,
      restartPoints: restartPoints.map((s) => ({ name: s.name, held: s.holds.length > 0, epoch: s.labels[MIRROR_LABEL.epoch], lastApplied: s.labels[MIRROR_LABEL.lastApplied] })),
      west: await blockHashes(west, 'db'),
      westAtRestartPoint: restartPoints[0] === undefined ? [] : await blockHashes(west, 'db', restartPoints[0].name),
      east: await blockHashes(east, 'db'),
    }
    if (oldToken === null) return { ...seen, oldLeader: null }
    // The deposed leader's most harmful calls: make the old source writable again (split brain), overwrite the new primary.
    const oldLeader = {
      eastWritable: await codeOf(east.setWritable('db', true, oldToken)),
      westWrite: await codeOf(west.write('db', 0, new Uint8Array(BS).fill(0xee), oldToken)),
      unchanged: (await east.volumeInfo('db')).writable === false && (await blockHashes(west, 'db')).join() === seen.west.join(),
    }
    return { ...seen, oldLeader }
  } finally {
    await close()
  }
}

/**
 * Asserts that the failover of one run happened exactly once, to the data east had replicated, and (given the
 * deposed leader's token) that both pools refuse that token.
 */
async function expectFailedOverOnce(label: string, prefix: string, open: () => Promise<Sites>, replicated: Replicated, oldToken: FenceToken | null, steps: readonly string[]): Promise<void> {
  const journal = await journalOf(prefix)
  expect(journal, label).toEqual({
    runs: [{ started: 1, completed: 1, failures: 0, compensated: 0, steps }],
    failoversStarted: 1,
    failedOver: [2],
    operationsFailed: 0,
  })
  const seen = await sitesOf(open, oldToken)
  expect(seen.restartPoints, label).toEqual([{ name: 'drkit.m.db.rp-2', held: true, epoch: '2', lastApplied: String(replicated.deltaSet) }])
  expect({ eastWritable: seen.eastWritable, westWritable: seen.westWritable }, label).toEqual({ eastWritable: false, westWritable: true })
  expect(seen.west, label).toEqual(replicated.hashes)
  expect(seen.westAtRestartPoint, label).toEqual(replicated.hashes)
  // East was written after the last delta set: a default failover leaves that write behind.
  expect(seen.east, label).not.toEqual(replicated.hashes)
  if (oldToken !== null) expect(seen.oldLeader, label).toEqual({ eastWritable: 'E_FENCED', westWrite: 'E_FENCED', unchanged: true })
}

const stepsOf = (reports: readonly RunReport[]): string[] =>
  reports.flatMap((r) => (r.op === 'event' && r.name === 'workflow.stepCompleted' && String((r.payload as { id?: unknown }).id).startsWith(`${FAILOVER_WORKFLOW}:`) ? [String((r.payload as { step?: unknown }).step)] : []))

/** The pid in a pool's lock file. */
const lockHolder = async (pool: string): Promise<number> => Number.parseInt(await readFile(join(pool, 'LOCK'), 'utf8'), 10)

describe('two coordinators on one etcd run a real mirror failover', () => {
  it('the leader is SIGKILLed at every step of the failover; the standby takes the lease, resumes the failover, and every effect happens once', async () => {
    let leader = await coordinator('mirror-0')
    let next = coordinator('mirror-1')
    next.catch(() => undefined)
    // A reference run, not killed: the failover's steps as the leader's workflow events report them.
    const reference = await freshRun('reference')
    leader.send({ op: 'mirror-run', ...reference, role: 'leader', holdAt: null, release: false })
    const replicatedRef = await leader.report(reference.run, 'replicated')
    expect(await leader.report(reference.run, 'failed-over')).toMatchObject({ epoch: 2, state: 'failedOver', restartPoint: 'drkit.m.db.rp-2' })
    const steps = stepsOf(leader.reportsOf(reference.run))
    expect(steps.length).toBeGreaterThan(5)
    await expectFailedOverOnce('reference', reference.prefix, () => openPools(reference.pools), replicatedRef, null, steps)

    for (const [index, step] of steps.entries()) {
      const label = `killed after step ${index} (${step}) ran, before it was journaled`
      const standby = await next
      const run = await freshRun(`kill-${step}`)
      leader.send({ op: 'mirror-run', ...run, role: 'leader', holdAt: step, release: false })
      const old = await leader.report(run.run, 'leading')
      standby.send({ op: 'mirror-run', ...run, role: 'standby', holdAt: null, release: false })
      const replicated = await leader.report(run.run, 'replicated')
      expect(await leader.report(run.run, 'holding'), label).toMatchObject({ step })
      // In the middle of the failover: the steps before this one are journaled, this one's effects happened.
      expect(stepsOf(leader.reportsOf(run.run)), label).toEqual(steps.slice(0, index))
      // The leader's process holds both pools' locks when it dies: the standby has to take over stale locks.
      expect([await lockHolder(run.pools.east), await lockHolder(run.pools.west)], label).toEqual([leader.child.pid, leader.child.pid])
      await leader.kill()
      if (index + 1 < steps.length) {
        // Warms up the next run's standby while this one waits for the dead leader's lease to expire.
        next = coordinator(`mirror-${index + 2}`)
        next.catch(() => undefined)
      }
      const took = await standby.report(run.run, 'leading')
      expect(took.token, label).toBeGreaterThan(old.token)
      expect(await standby.report(run.run, 'failed-over'), label).toMatchObject({ epoch: 2, state: 'failedOver', restartPoint: 'drkit.m.db.rp-2' })
      await expectFailedOverOnce(label, run.prefix, () => openPools(run.pools), replicated, { scope: SCOPE, value: old.token }, steps)
      leader = standby
    }
  }, 240_000)

  it('the leader is SIGSTOPped inside the failover past its lease; the standby completes it; the resumed leader is refused everywhere, nothing failed or compensated', async () => {
    const leader = await coordinator('pause-leader')
    const standby = await coordinator('pause-standby')
    const shared = { east: memoryStorage(), west: memoryStorage() }
    const storage = new SharedStorage(shared)
    leader.share(storage)
    standby.share(storage)
    const run = 'pause'
    const prefix = cluster.prefix('mirror-pause')
    // Paused with play-received's delta sets applied on west and its result not yet journaled.
    const step = 'play-received'
    leader.send({ op: 'mirror-run', run, prefix, role: 'leader', pools: null, holdAt: step, release: true })
    const old = await leader.report(run, 'leading')
    standby.send({ op: 'mirror-run', run, prefix, role: 'standby', pools: null, holdAt: null, release: false })
    const replicated = await leader.report(run, 'replicated')
    expect(await leader.report(run, 'holding')).toMatchObject({ step })
    leader.child.kill('SIGSTOP')
    // Delivered once the leader runs again: it then goes on with the held journal append.
    leader.send({ op: 'go', run })
    const before = stepsOf(leader.reportsOf(run))
    expect(before).not.toContain(step)
    const took = await standby.report(run, 'leading')
    expect(took.token).toBeGreaterThan(old.token)
    expect(await standby.report(run, 'failed-over')).toMatchObject({ epoch: 2, state: 'failedOver', restartPoint: 'drkit.m.db.rp-2' })
    const resumedAt = storage.calls.length
    leader.child.kill('SIGCONT')
    expect(await leader.report(run, 'deposed')).toMatchObject({ outcome: 'E_FENCED' })
    // The old leader stopped without compensating: after it resumed it sent no change to the storage at all.
    const late = storage.calls.slice(resumedAt).filter((call) => call.from === leader.name && call.token !== undefined)
    expect(late).toEqual([])
    // The standby journaled the held step and the rest; the old leader's append of it was refused.
    const journal = await journalOf(prefix)
    const steps = journal.runs[0]?.steps ?? []
    expect(steps.slice(0, before.length + 1)).toEqual([...before, step])
    expect(new Set(steps).size).toBe(steps.length)
    expect(steps.at(-1)).toBe('commit')
    await expectFailedOverOnce('paused inside the failover', prefix, async () => ({ ...shared, close: async () => undefined }), replicated, { scope: SCOPE, value: old.token }, steps)
  }, 120_000)
})
