/**
 * Two drkit coordinators in separate processes against one etcd, acting on one shared side-effect target behind a
 * FenceGuard (in this process, over IPC). A: the leader is killed mid-workflow and the standby finishes the
 * workflow from the journal. B: the leader is paused (SIGSTOP) past its lease, the standby takes over and
 * finishes, the old leader is resumed (SIGCONT) and everything it still tries is refused with E_FENCED — 100 times.
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
 * Starts `run` with `leader` leading and `standby` waiting for the lease (its side effects go to `target`);
 * resolves with both coordinators' fence tokens once the standby has taken over.
 */
async function startRun(
  leader: CoordinatorProcess,
  standby: CoordinatorProcess,
  run: string,
  prefix: string,
  target: EffectTarget,
): Promise<{ first: number; took: number }> {
  standby.onEffect = (request) => standby.answer(request, () => target.perform(request.key, request.token, 'new'))
  leader.send({ op: 'run', run, prefix, role: 'leader', steps: STEPS })
  const first = await leader.report(run, 'leading')
  standby.send({ op: 'run', run, prefix, role: 'standby', steps: STEPS })
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
      if (request.step === 3) {
        // The worst moment: the side effect happened, its step is not journaled, and the leader dies.
        target.perform(request.key, request.token, 'old')
        killed = leader.kill()
        return
      }
      leader.answer(request, () => target.perform(request.key, request.token, 'old'))
    }
    const tokens = await startRun(leader, standby, run, prefix, target)
    expect(killed).toBeDefined()
    await killed
    const done = await standby.report(run, 'done')

    expect(done).toMatchObject({ resumed: 1, failed: 0 })
    expect(tokens.took).toBeGreaterThan(tokens.first)
    for (const key of stepKeys(run)) expect(target.performedCount(key), key).toBe(1)
    // Step 3 ran twice (before the crash and after the takeover); the second time was an idempotent repeat.
    expect(target.calls.filter((c) => c.key === `${run}/3`).map((c) => `${c.from}:${c.outcome}`)).toEqual(['old:applied', 'new:repeat'])
    expect(target.calls.filter((c) => c.from === 'new').map((c) => c.key)).toEqual([`${run}/takeover`, ...stepKeys(run).slice(3)])
    expect(await journalOf(prefix, run)).toEqual({ completed: 1, steps: [0, 1, 2, 3, 4, 5], failures: 0 })
  }, 60_000)

  it(`B: a leader paused past its lease is fenced after the standby took over: 0 double actions in ${PARTITION_RUNS} runs`, async () => {
    const seed = Number(process.env['DRKIT_PARTITION_SEED'] ?? Date.now() % 1_000_000)
    const random = prng(seed)
    const lanes = await Promise.all(
      Array.from({ length: LANES }, async (_, lane) => startProcesses(`b${lane}-one`, `b${lane}-two`)),
    )
    interface RunResult {
      readonly run: string
      readonly doubleActions: number
      readonly missing: number
      readonly staleAccepted: number
      readonly oldCallsAfterResume: number
      readonly oldCallsAfterResumeNotFenced: number
      readonly outcome: string
      readonly probe: string
      readonly signalReason: string
      readonly tokens: readonly [number, number]
      readonly journal: { completed: number; steps: number[]; failures: number }
      readonly variant: string
    }

    const partitionRun = async (leader: CoordinatorProcess, standby: CoordinatorProcess, run: string): Promise<RunResult> => {
      const prefix = cluster.prefix('coord-b')
      const target = new EffectTarget()
      const pauseStep = 1 + random(4)
      const hold = random(2) === 0
      const delayMs = random(10)
      let held: EffectRequest | undefined
      let markPaused: () => void = () => undefined
      const paused = new Promise<void>((resolve) => {
        markPaused = resolve
      })
      let pausing = false
      const performAsOld = (request: EffectRequest) => target.perform(request.key, request.token, 'old')
      leader.onEffect = (request) => {
        if (!pausing && request.step === pauseStep) {
          pausing = true
          if (hold) {
            // The request is in flight when the partition starts; it arrives only after the old leader resumes.
            leader.child.kill('SIGSTOP')
            held = request
            markPaused()
            return
          }
          leader.answer(request, () => performAsOld(request))
          setTimeout(() => {
            leader.child.kill('SIGSTOP')
            markPaused()
          }, delayMs)
          return
        }
        leader.answer(request, () => performAsOld(request))
      }
      const tokens = await startRun(leader, standby, run, prefix, target)
      await standby.report(run, 'done')
      // (A leader that lost its lease before the pause point, say on a starved CPU, is never paused.)
      if (pausing) await paused
      const resumeIndex = target.calls.length
      leader.child.kill('SIGCONT')
      const late = held
      if (late !== undefined) leader.answer(late, () => performAsOld(late))
      leader.send({ op: 'probe', run })
      const fenced = await leader.report(run, 'fenced')

      const oldAfterResume = target.calls.slice(resumeIndex).filter((c) => c.from === 'old')
      const staleAccepted = target.calls.filter((c) => c.outcome !== 'fenced' && c.highestBefore !== undefined && c.token.value < c.highestBefore).length
      const counts = stepKeys(run).map((key) => target.performedCount(key))
      return {
        run,
        doubleActions: counts.reduce((sum, n) => sum + Math.max(0, n - 1), 0) + target.performedCount(`${run}/probe`),
        missing: counts.filter((n) => n === 0).length,
        staleAccepted,
        oldCallsAfterResume: oldAfterResume.length,
        oldCallsAfterResumeNotFenced: oldAfterResume.filter((c) => c.outcome !== 'fenced').length,
        outcome: fenced.outcome,
        probe: fenced.probe,
        signalReason: fenced.signalReason,
        tokens: [tokens.first, tokens.took],
        journal: await journalOf(prefix, run),
        variant: `${hold ? 'held-request' : `paused-${delayMs}ms-after`} at step ${pauseStep}`,
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
    const durationMs = Date.now() - started
    const doubleActions = results.reduce((sum, r) => sum + r.doubleActions, 0)
    console.log(
      JSON.stringify({
        scenario: 'etcd partition (SIGSTOP past the lease, SIGCONT after the takeover)',
        seed,
        runs: results.length,
        lanes: LANES,
        durationMs,
        doubleActions,
        oldCallsAfterResume: results.reduce((sum, r) => sum + r.oldCallsAfterResume, 0),
        oldOutcomes: countBy(results.map((r) => r.outcome)),
        variants: countBy(results.map((r) => r.variant.replace(/ at step \d/, '').replace(/-\d+ms-/, '-'))),
      }),
    )

    expect(results).toHaveLength(PARTITION_RUNS)
    expect(doubleActions).toBe(0)
    for (const r of results) {
      const label = `${r.run} (${r.variant}, seed ${seed})`
      expect(r.missing, label).toBe(0)
      expect(r.staleAccepted, label).toBe(0)
      expect(r.oldCallsAfterResume, label).toBeGreaterThanOrEqual(1)
      expect(r.oldCallsAfterResumeNotFenced, label).toBe(0)
      expect(r.probe, label).toBe('E_FENCED')
      expect(r.signalReason, label).toBe('E_FENCED')
      expect(['E_FENCED', 'completed'], label).toContain(r.outcome)
      expect(r.tokens[1], label).toBeGreaterThan(r.tokens[0])
      expect(r.journal, label).toEqual({ completed: 1, steps: [0, 1, 2, 3, 4, 5], failures: 0 })
    }
  }, 240_000)
})

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1
  return counts
}
