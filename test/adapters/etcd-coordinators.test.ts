/**
 * Two drkit coordinators in separate processes against one etcd, acting on one shared side-effect target behind a
 * FenceGuard (in this process, over IPC), which is also what their storage port presents tokens to. A: the leader
 * is killed mid-workflow and the standby finishes the workflow from the journal. B: the leader is paused (SIGSTOP)
 * inside the workflow, past its lease; the standby takes over — drkit presents its token to the target — and
 * finishes; the old leader is resumed (SIGCONT) and everything it still tries is refused with E_FENCED — 100 times.
 * No token is shown to the target on drkit's behalf: what is refused, drkit made refusable.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { etcdStateStore } from '../../src/adapters/etcd/etcd-state-store.js'
import { EtcdTestCluster, etcdEndpoints } from '../fixtures/etcd-endpoints.js'
import { CoordinatorProcess, EffectTarget } from '../fixtures/etcd-coordinator-harness.js'
import type { EffectRequest } from '../fixtures/etcd-coordinator-protocol.js'

const STEPS = 6
const PARTITION_RUNS = 100
const LANES = 5

const processes: CoordinatorProcess[] = []
const cluster = new EtcdTestCluster()

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()))
  await cluster.cleanUp()
})

async function startProcesses(...names: string[]): Promise<CoordinatorProcess[]> {
  etcdEndpoints()
  const started = names.map((name) => new CoordinatorProcess(name))
  processes.push(...started)
  await Promise.all(started.map((p) => p.ready()))
  return started
}


/** What the journal says about the workflow run: completions, step indices completed in order, failures. */
async function journalOf(prefix: string, run: string): Promise<{ completed: number; steps: number[]; failures: number }> {
  const store = etcdStateStore({ hosts: etcdEndpoints(), prefix })
  try {
    const records = await store.read(`workflow/${run}`)
    return {
      completed: records.filter((r) => r.type === 'workflow.completed').length,
      steps: records.filter((r) => r.type === 'step.completed').map((r) => (r.data as { index: number }).index),
      failures: records.filter((r) => r.type === 'step.failed' || r.type === 'workflow.failed').length,
    }
  } finally {
    await store.close()
  }
}

/**
 * Starts `run` with `leader` leading (pausing before step `gateBefore`, if given) and `standby` waiting for the
 * lease (its side effects go to `target`); resolves with both coordinators' fence tokens once the standby has taken
 * over.
 */
async function startRun(
  leader: CoordinatorProcess,
  standby: CoordinatorProcess,
  run: string,
  prefix: string,
  target: EffectTarget,
  gateBefore: number | null = null,
): Promise<{ first: number; took: number }> {
  standby.onEffect = (request) => standby.answer(request, () => target.handle(request, 'new'))
  leader.send({ op: 'run', run, prefix, role: 'leader', steps: STEPS, gateBefore })
  const first = await leader.report(run, 'leading')
  standby.send({ op: 'run', run, prefix, role: 'standby', steps: STEPS, gateBefore: null })
  const took = await standby.report(run, 'leading')
  return { first: first.token, took: took.token }
}

const stepKeys = (run: string): string[] => Array.from({ length: STEPS }, (_, i) => `${run}/${i}`)

/** A small seeded PRNG (mulberry32), so a failing run can be replayed from the printed seed. */
function prng(seed: number): (below: number) => number {
  let state = seed >>> 0
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return (((x ^ (x >>> 14)) >>> 0) / 4294967296) * below | 0
  }
}

describe('two coordinators on one etcd', () => {
  it('A: the leader is SIGKILLed mid-workflow; the standby takes the lease after its TTL and completes the workflow, every side effect once', async () => {
    const [leader, standby] = await startProcesses('a-leader', 'a-standby')
    if (leader === undefined || standby === undefined) throw new Error('processes missing')
    const run = 'crash-run'
    const prefix = cluster.prefix('coord-a')
    const target = new EffectTarget()
    let killed: Promise<void> | undefined
    leader.onEffect = (request) => {
      if (request.kind === 'step' && request.step === 3) {
        // The worst moment: the side effect happened, its step is not journaled, and the leader dies.
        target.perform(request.key, request.token, 'old')
        killed = leader.kill()
        return
      }
      leader.answer(request, () => target.handle(request, 'old'))
    }
    const tokens = await startRun(leader, standby, run, prefix, target)
    expect(killed).toBeDefined()
    await killed
    const done = await standby.report(run, 'done')

    expect(done).toMatchObject({ resumed: 1, failed: 0 })
    expect(tokens.took).toBeGreaterThan(tokens.first)
    for (const key of stepKeys(run)) expect(target.appliedCount(key), key).toBe(1)
    // Step 3 was acted on twice (before the crash and after the takeover); the second time found its effect applied.
    expect(target.calls.filter((c) => c.key === `${run}/3`).map((c) => `${c.from}:${c.outcome}`)).toEqual(['old:applied', 'new:repeat'])
    for (const key of stepKeys(run).filter((k) => k !== `${run}/3`)) expect(target.actedCount(key), key).toBe(1)
    // The new leader's createDrSystem presented its token before the resumed workflow acted.
    expect(target.calls.filter((c) => c.from === 'new').map((c) => `${c.key}:${c.outcome}`)).toEqual([
      `${run}/present:presented`,
      ...stepKeys(run).slice(3).map((key) => `${key}:${key === `${run}/3` ? 'repeat' : 'applied'}`),
    ])
    expect(await journalOf(prefix, run)).toEqual({ completed: 1, steps: [0, 1, 2, 3, 4, 5], failures: 0 })
  }, 60_000)

  it(`B: a leader paused inside the workflow past its lease is fenced after the standby took over: 0 double actions in ${PARTITION_RUNS} runs`, async () => {
    const seed = Number(process.env['DRKIT_PARTITION_SEED'] ?? Date.now() % 1_000_000)
    const random = prng(seed)
    const lanes = await Promise.all(
      Array.from({ length: LANES }, async (_, lane) => startProcesses(`b${lane}-one`, `b${lane}-two`)),
    )
    interface RunResult {
      readonly run: string
      readonly variant: string
      readonly paused: boolean
      readonly done: { resumed: number; failed: number }
      readonly doubleActions: number
      readonly missing: number
      readonly staleAccepted: number
      readonly oldAfterResume: readonly string[]
      readonly newFirst: string | undefined
      readonly outcome: string
      readonly probe: string
      readonly signalReason: string
      readonly tokens: readonly [number, number]
      readonly journal: { completed: number; steps: number[]; failures: number }
    }

    const partitionRun = async (leader: CoordinatorProcess, standby: CoordinatorProcess, run: string): Promise<RunResult> => {
      const prefix = cluster.prefix('coord-b')
      const target = new EffectTarget()
      const pauseStep = 1 + random(4)
      // Paused with the step's request in flight (answered only after SIGCONT), or before the step starts.
      const variant = random(2) === 0 ? 'held-request' : 'between-steps'
      let held: EffectRequest | undefined
      let paused = false
      leader.onEffect = (request) => {
        if (variant === 'held-request' && !paused && request.kind === 'step' && request.step === pauseStep) {
          leader.child.kill('SIGSTOP')
          paused = true
          held = request
          return
        }
        leader.answer(request, () => target.handle(request, 'old'))
      }
      if (variant === 'between-steps') {
        // The leader waits at its gate for 'go': paused there, it gets 'go' only once it runs again.
        void leader.report(run, 'gate').then(() => {
          leader.child.kill('SIGSTOP')
          paused = true
          leader.send({ op: 'go', run })
        })
      }
      const tokens = await startRun(leader, standby, run, prefix, target, variant === 'between-steps' ? pauseStep : null)
      const done = await standby.report(run, 'done')
      const resumeIndex = target.calls.length
      leader.child.kill('SIGCONT')
      const late = held
      if (late !== undefined) leader.answer(late, () => target.handle(late, 'old'))
      leader.send({ op: 'probe', run })
      const fenced = await leader.report(run, 'fenced')

      const keys = [...stepKeys(run), `${run}/probe`]
      const acted = keys.map((key) => target.actedCount(key))
      return {
        run,
        variant: `${variant} at step ${pauseStep}`,
        paused,
        done: { resumed: done.resumed, failed: done.failed },
        doubleActions: acted.reduce((sum, n, i) => sum + Math.max(0, i < STEPS ? n - 1 : n), 0),
        missing: acted.slice(0, STEPS).filter((n) => n === 0).length,
        staleAccepted: target.calls.filter((c) => c.outcome !== 'fenced' && c.highestBefore !== undefined && c.token.value < c.highestBefore).length,
        oldAfterResume: target.calls.slice(resumeIndex).filter((c) => c.from === 'old').map((c) => `${c.key.slice(run.length + 1)}:${c.outcome}`),
        newFirst: target.calls.find((c) => c.from === 'new')?.outcome,
        outcome: fenced.outcome,
        probe: fenced.probe,
        signalReason: fenced.signalReason,
        tokens: [tokens.first, tokens.took],
        journal: await journalOf(prefix, run),
      }
    }

    const started = Date.now()
    const results: RunResult[] = []
    await Promise.all(
      lanes.map(async ([one, two], lane) => {
        if (one === undefined || two === undefined) throw new Error('processes missing')
        for (let n = lane; n < PARTITION_RUNS; n += LANES) {
          const [leader, standby] = n % 2 === 0 ? [one, two] : [two, one]
          results.push(await partitionRun(leader, standby, `partition-${n}`))
        }
      }),
    )
    const doubleActions = results.reduce((sum, r) => sum + r.doubleActions, 0)
    console.log(
      JSON.stringify({
        scenario: 'etcd partition (SIGSTOP inside the workflow past the lease, SIGCONT after the takeover)',
        seed,
        runs: results.length,
        lanes: LANES,
        durationMs: Date.now() - started,
        doubleActions,
        oldCallsAfterResume: results.reduce((sum, r) => sum + r.oldAfterResume.length, 0),
        variants: countBy(results.map((r) => r.variant.replace(/ at step \d/, ''))),
      }),
    )

    expect(results).toHaveLength(PARTITION_RUNS)
    expect(doubleActions).toBe(0)
    for (const r of results) {
      const label = `${r.run} (${r.variant}, seed ${seed})`
      expect(r.paused, label).toBe(true)
      expect(r.done, label).toEqual({ resumed: 1, failed: 0 })
      expect(r.outcome, label).toBe('E_FENCED')
      expect(r.missing, label).toBe(0)
      expect(r.staleAccepted, label).toBe(0)
      // Everything the old leader still tried after SIGCONT was refused: the held step (if any) and the probe.
      const step = r.variant.slice(-1)
      expect(r.oldAfterResume, label).toEqual(r.variant.startsWith('held') ? [`${step}:fenced`, 'probe:fenced'] : ['probe:fenced'])
      expect(r.newFirst, label).toBe('presented')
      expect(r.probe, label).toBe('E_FENCED')
      expect(r.signalReason, label).toBe('E_FENCED')
      expect(r.tokens[1], label).toBeGreaterThan(r.tokens[0])
      expect(r.journal, label).toEqual({ completed: 1, steps: [0, 1, 2, 3, 4, 5], failures: 0 })
    }
  }, 420_000)
})

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1
  return counts
}
