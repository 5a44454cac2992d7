import { describe, expect, it } from 'vitest'
import * as t from 'io-ts'
import {
  DrError,
  EventBus,
  FenceGuard,
  InjectedCrash,
  ManualClock,
  MemoryLeaseManager,
  WorkflowEngine,
  systemClock,
  type CrashPoint,
  type Lease,
  type WorkflowEvents,
} from '../../src/kernel/index.js'
import { memoryStateStore } from '../../src/kernel/memory-state-store.js'

/** A world with side effects that must each happen exactly once, made idempotent by key where a crash can repeat them. */
function fiveStepWorld() {
  const effects: string[] = []
  const applied = new Set<string>()
  const compensations: string[] = []
  const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
  engine.register('five', {
    input: t.type({ label: t.string }),
    run: async (ctx, input) => {
      const results: string[] = []
      for (let i = 1; i <= 5; i++) {
        results.push(
          await ctx.step(
            `step-${i}`,
            async (s) => {
              if (!applied.has(s.idempotencyKey)) {
                applied.add(s.idempotencyKey)
                effects.push(`step-${i}`)
              }
              return `${input.label}-${i}`
            },
            { compensate: async (result) => void compensations.push(result) },
          ),
        )
      }
      return results
    },
  })
  return { engine, effects, compensations }
}

/**
 * Coordinators' engines on one journal, each under its own lease, running steps a, b, c against a target behind a
 * FenceGuard (each effect once, by idempotency key); `during[step]` runs inside a step before its effect.
 */
function leasedWorld() {
  const clock = new ManualClock()
  const leases = new MemoryLeaseManager(clock, { defaultTtlMs: 1_000 })
  const store = memoryStateStore()
  const guard = new FenceGuard('target')
  const effects: string[] = []
  const applied = new Set<string>()
  const undone: string[] = []
  const during: Record<string, (() => unknown) | undefined> = {}
  const engine = (lease: Lease): WorkflowEngine => {
    const created = new WorkflowEngine({ stateStore: store, clock, lease })
    created.register('fenced', {
      input: t.null,
      run: async (ctx) => {
        for (const name of ['a', 'b', 'c']) {
          await ctx.step(
            name,
            async (s) => {
              await during[name]?.()
              if (s.token === undefined) throw new DrError('E_PRECONDITION', 'a step ran without the lease token')
              guard.check(s.token, name)
              if (!applied.has(s.idempotencyKey)) (applied.add(s.idempotencyKey), effects.push(name))
              return name
            },
            { compensate: async (result) => void undone.push(result) },
          )
        }
        return 'done'
      },
    })
    return created
  }
  const journal = async (id: string): Promise<string[]> => (await store.read(`workflow/${id}`)).map((r) => r.type)
  return { clock, leases, guard, effects, undone, during, engine, journal }
}

describe('durable workflows', () => {
  it('runs every step once and returns the result; a second run replays the recorded result', async () => {
    const { engine, effects } = fiveStepWorld()
    const result = await engine.run('five', 'w1', { label: 'x' })
    expect(result).toEqual(['x-1', 'x-2', 'x-3', 'x-4', 'x-5'])
    expect(await engine.run('five', 'w1', { label: 'x' })).toEqual(result)
    expect(effects).toEqual(['step-1', 'step-2', 'step-3', 'step-4', 'step-5'])
    expect((await engine.history('w1'))?.status).toBe('completed')
  })

  for (const phase of ['before', 'after'] as const) {
    for (let k = 0; k < 5; k++) {
      it(`crash ${phase} step ${k + 1} of 5, resume: each side effect happens exactly once`, async () => {
        const { engine, effects } = fiveStepWorld()
        const crashAt = (p: CrashPoint) => p.index === k && p.phase === phase
        await expect(engine.run('five', 'w', { label: 'y' }, { crashAt })).rejects.toBeInstanceOf(InjectedCrash)
        expect(await engine.listRunning()).toEqual(['w'])
        const result = await engine.resume('w')
        expect(result).toEqual(['y-1', 'y-2', 'y-3', 'y-4', 'y-5'])
        expect(effects).toEqual(['step-1', 'step-2', 'step-3', 'step-4', 'step-5'])
        expect(await engine.listRunning()).toEqual([])
      })
    }
  }

  it('a step that ran before the crash but was not journaled runs again with the same idempotency key', async () => {
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
    const keys: string[] = []
    engine.register('one', {
      input: t.null,
      run: async (ctx) => ctx.step('only', async (s) => (keys.push(s.idempotencyKey), 'done')),
    })
    await expect(engine.run('one', 'k', null, { crashAt: (p) => p.phase === 'after' })).rejects.toBeInstanceOf(InjectedCrash)
    await engine.resume('k')
    expect(keys).toEqual(['k/0', 'k/0'])
  })

  it('compensates completed steps in reverse order when a later step fails, and records the failure', async () => {
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
    const undone: string[] = []
    engine.register('failing', {
      input: t.null,
      run: async (ctx) => {
        for (const name of ['a', 'b', 'c']) {
          await ctx.step(name, async () => name, { compensate: async (r) => void undone.push(r) })
        }
        await ctx.step('d', async () => {
          throw new DrError('E_PRECONDITION', 'd cannot run')
        })
        return null
      },
    })
    await expect(engine.run('failing', 'f', null)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(undone).toEqual(['c', 'b', 'a'])
    const history = await engine.history('f')
    expect(history?.status).toBe('failed')
    expect(history?.steps.map((s) => s.compensated)).toEqual([true, true, true, false])
    // Re-running a failed workflow reports the recorded failure and compensates nothing twice.
    await expect(engine.run('failing', 'f', null)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(undone).toEqual(['c', 'b', 'a'])
  })

  it('a crash during compensation resumes compensation where it stopped', async () => {
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
    const undone: string[] = []
    let runs = 0
    engine.register('comp', {
      input: t.null,
      run: async (ctx) => {
        runs++
        for (const name of ['a', 'b', 'c']) await ctx.step(name, async () => name, { compensate: async (r) => void undone.push(r) })
        await ctx.step('boom', async () => {
          throw new DrError('E_ADAPTER', 'disk on fire')
        })
        return null
      },
    })
    const crashAt = (p: CrashPoint) => p.phase === 'compensate' && p.step === 'a'
    await expect(engine.run('comp', 'c1', null, { crashAt })).rejects.toBeInstanceOf(InjectedCrash)
    expect(undone).toEqual(['c', 'b'])
    await expect(engine.resume('comp-unknown')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(engine.resume('c1')).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(undone).toEqual(['c', 'b', 'a'])
    expect(runs).toBe(2)
  })

  it('abort cancels the run with E_ABORTED and compensates what was done', async () => {
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
    const controller = new AbortController()
    const undone: string[] = []
    const ran: string[] = []
    engine.register('abortable', {
      input: t.null,
      run: async (ctx) => {
        await ctx.step('first', async () => (ran.push('first'), 'first'), { compensate: async (r) => void undone.push(r) })
        controller.abort()
        await ctx.step('second', async () => (ran.push('second'), 'second'))
        return null
      },
    })
    await expect(engine.run('abortable', 'a', null, { signal: controller.signal })).rejects.toMatchObject({ code: 'E_ABORTED' })
    expect(ran).toEqual(['first'])
    expect(undone).toEqual(['first'])
  })

  it('retries a transient failure with backoff on the clock, then succeeds', async () => {
    const clock = new ManualClock()
    const events = new EventBus<WorkflowEvents>(() => clock.now())
    const retried: number[] = []
    events.on('workflow.stepRetried', (e) => retried.push(e.payload.delayMs))
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock, events })
    let attempts = 0
    engine.register('flaky', {
      input: t.null,
      run: async (ctx) =>
        ctx.step(
          'call',
          async () => {
            attempts++
            if (attempts < 3) throw new DrError('E_ADAPTER', 'flaky')
            return attempts
          },
          { retry: { attempts: 5, initialDelayMs: 100, factor: 2 } },
        ),
    })
    const running = engine.run('flaky', 'r', null)
    await clock.advance(1_000)
    expect(await running).toBe(3)
    expect(retried).toEqual([100, 200])
  })

  it('does not retry errors that are not transient', async () => {
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
    let attempts = 0
    engine.register('hard', {
      input: t.null,
      run: async (ctx) =>
        ctx.step('call', async () => {
          attempts++
          throw new DrError('E_PRECONDITION', 'no')
        }, { retry: { attempts: 5 } }),
    })
    await expect(engine.run('hard', 'h', null)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(attempts).toBe(1)
  })

  it('stops with E_FENCED and stays resumable when its lease is lost; a new holder resumes it', async () => {
    const clock = new ManualClock()
    const leases = new MemoryLeaseManager(clock, { defaultTtlMs: 1_000 })
    const store = memoryStateStore()
    const engine = new WorkflowEngine({ stateStore: store, clock })
    const done: string[] = []
    const tokens: number[] = []
    engine.register('leased', {
      input: t.null,
      run: async (ctx) => {
        await ctx.step('one', async (s) => (done.push('one'), tokens.push(s.token?.value ?? -1), 1))
        await ctx.step('wait', async (s) => {
          if (s.token?.value === 1) await clock.advance(5_000) // the first holder's lease expires while this step runs
          if (s.signal.aborted) throw new DrError('E_ABORTED', 'lease lost mid-step')
          return 2
        })
        await ctx.step('three', async (s) => (done.push('three'), tokens.push(s.token?.value ?? -1), 3))
        return null
      },
    })
    const first = await leases.acquire('scope', 'coordinator-a')
    await expect(engine.run('leased', 'l', null, { lease: first })).rejects.toMatchObject({ code: 'E_FENCED' })
    expect((await engine.history('l'))?.status).toBe('running')
    const second = await leases.acquire('scope', 'coordinator-b')
    await engine.resume('l', { lease: second })
    expect(done).toEqual(['one', 'three'])
    expect(tokens[1]).toBeGreaterThan(tokens[0] ?? Infinity)
  })

  it('acts under the engine\'s lease in every run: a lease lost mid-run stops it resumable, journaling and compensating nothing; the next holder completes it', async () => {
    const w = leasedWorld()
    const first = await w.leases.acquire('scope', 'coordinator-a')
    // The lease runs out while step b runs (a coordinator paused past its TTL); b's effect still lands.
    w.during.b = () => w.clock.advance(5_000)
    const outcome = await w.engine(first).run('fenced', 'r', null).catch((error: unknown) => error)
    expect(outcome).toMatchObject({ code: 'E_FENCED', details: { scope: 'scope', token: first.token.value } })
    expect(await w.journal('r')).toEqual(['workflow.started', 'step.completed'])
    expect(w.undone).toEqual([])
    w.during.b = undefined
    const second = await w.leases.acquire('scope', 'coordinator-b')
    expect(await w.engine(second).resume('r')).toBe('done')
    expect(w.effects).toEqual(['a', 'b', 'c'])
    expect(w.undone).toEqual([])
    expect(await w.journal('r')).toEqual(['workflow.started', 'step.completed', 'step.completed', 'step.completed', 'workflow.completed'])
  })

  it('treats a step refused for a stale fence token as a lost lease even while the lease looks valid; a stale epoch is an ordinary failure', async () => {
    const w = leasedWorld()
    const lease = await w.leases.acquire('scope', 'coordinator-a')
    // A newer coordinator showed the target its token; this one's lease service has not told it yet.
    w.during.b = () => w.guard.check({ scope: 'scope', value: lease.token.value + 1 }, 'presentToken')
    await expect(w.engine(lease).run('fenced', 'stale', null)).rejects.toMatchObject({ code: 'E_FENCED', details: { scope: 'scope' } })
    expect(lease.isValid()).toBe(true)
    expect(await w.journal('stale')).toEqual(['workflow.started', 'step.completed'])
    expect(w.undone).toEqual([])
    const other = leasedWorld()
    other.during.b = () => {
      throw new DrError('E_FENCED', 'epoch 1 is older than 2', { epoch: 1, current: 2 })
    }
    await expect(other.engine(await other.leases.acquire('scope', 'a')).run('fenced', 'epoch', null)).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(await other.journal('epoch')).toEqual(['workflow.started', 'step.completed', 'step.failed', 'step.compensated', 'workflow.failed'])
    expect(other.undone).toEqual(['a'])
  })

  it('starts no run under a lost lease: nothing is journaled', async () => {
    const w = leasedWorld()
    const lease = await w.leases.acquire('scope', 'coordinator-a')
    await lease.release()
    await expect(w.engine(lease).run('fenced', 'never', null)).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(await w.journal('never')).toEqual([])
    expect(w.effects).toEqual([])
  })

  it('refuses a workflow whose steps changed between runs (non-determinism) with E_CORRUPT', async () => {
    const store = memoryStateStore()
    let name = 'original'
    const engine = new WorkflowEngine({ stateStore: store, clock: systemClock })
    engine.register('changing', { input: t.null, run: async (ctx) => ctx.step(name, async () => 1) })
    await expect(engine.run('changing', 'n', null, { crashAt: (p) => p.phase === 'after' })).rejects.toBeInstanceOf(InjectedCrash)
    await expect(engine.run('changing', 'n2', null)).resolves.toBe(1)
    name = 'renamed'
    await expect(engine.resume('n2')).resolves.toBe(1) // completed runs are not re-executed
    await store.append('workflow/n3', 0, [
      { type: 'workflow.started', data: { workflowType: 'changing', input: null } },
      { type: 'step.completed', data: { index: 0, name: 'original', result: 1 } },
    ])
    await expect(engine.resume('n3')).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })

  it('rejects invalid input, unknown types, duplicate registration and a type mismatch on an existing id', async () => {
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock })
    engine.register('typed', { input: t.type({ n: t.number }), run: async (_ctx, input) => input.n })
    await expect(engine.run('typed', 'x', { n: 'one' })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(engine.history('x')).resolves.toBeUndefined()
    await expect(engine.run('nope', 'x', null)).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(() => engine.register('typed', { input: t.null, run: async () => null })).toThrow(DrError)
    engine.register('other', { input: t.type({ n: t.number }), run: async () => 0 })
    await engine.run('typed', 'y', { n: 1 })
    await expect(engine.run('other', 'y', { n: 1 })).rejects.toMatchObject({ code: 'E_CONFLICT' })
  })

  it('detects a damaged workflow journal instead of trusting it', async () => {
    const store = memoryStateStore()
    const engine = new WorkflowEngine({ stateStore: store, clock: systemClock })
    engine.register('any', { input: t.null, run: async () => null })
    await store.append('workflow/bad', 0, [{ type: 'step.completed', data: { index: 0, name: 'x', result: 1 } }])
    await expect(engine.resume('bad')).rejects.toMatchObject({ code: 'E_CORRUPT' })
    await store.append('workflow/bad2', 0, [
      { type: 'workflow.started', data: { workflowType: 'any', input: null } },
      { type: 'step.completed', data: { index: 'zero' } },
    ])
    await expect(engine.resume('bad2')).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })

  it('reports progress of long steps through events', async () => {
    const events = new EventBus<WorkflowEvents>()
    const seen: Array<[number, number, number | undefined]> = []
    events.on('workflow.progressed', (e) => seen.push([e.payload.done, e.payload.total, e.payload.bytes]))
    const engine = new WorkflowEngine({ stateStore: memoryStateStore(), clock: systemClock, events })
    engine.register('long', {
      input: t.null,
      run: async (ctx) =>
        ctx.step('copy', async (s) => {
          for (let i = 1; i <= 3; i++) s.progress(i, 3, i * 100)
          return 'ok'
        }),
    })
    await engine.run('long', 'p', null)
    expect(seen).toEqual([
      [1, 3, 100],
      [2, 3, 200],
      [3, 3, 300],
    ])
  })
})
