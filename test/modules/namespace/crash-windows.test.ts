import { describe, expect, it } from 'vitest'
import { InjectedCrash, WorkflowEngine, type CrashPoint } from '../../../src/kernel/index.js'
import type { Json } from '../../../src/kernel/codecs.js'
import type { RunOptions } from '../../../src/kernel/workflow.js'
import { createdShares, manyLinks, openNamespace, serverTargets, settled, type NamespaceDurable } from '../../fixtures/namespace-world.js'

/**
 * A workflow engine of a coordinator process that dies once `dead()` says so: from then on every workflow it
 * would start or resume crashes before its first step, as if the process had been killed.
 */
function dyingEngine(dead: () => boolean) {
  return (options: ConstructorParameters<typeof WorkflowEngine>[0]) =>
    new (class extends WorkflowEngine {
      override async run<R extends Json>(type: string, id: string, input: Json, runOptions: RunOptions = {}): Promise<R> {
        if (dead()) throw new InjectedCrash({ workflowId: id, index: 0, step: 'start', phase: 'before' })
        return super.run<R>(type, id, input, runOptions)
      }
    })(options)
}

/** After the restart every link is failed over, its share created once, the mirror failed over once, every write had targets. */
async function expectAllFailedOver(d: NamespaceDurable, links: number): Promise<void> {
  const w = await openNamespace(d)
  expect(await w.ns.recover()).toEqual({ resumed: links, failed: 0 })
  const nodes = await w.ns.list({ namespace: 'corp' })
  expect(nodes.filter((node) => node.protection?.state === 'failedOver')).toHaveLength(links)
  const created = d.faults['west']!.calls.filter((call) => call.method === 'createShare' && call.outcome === 'ok')
  expect(created).toHaveLength(links)
  expect(new Set(created.map((call) => (call.args[0] as { name: string }).name)).size).toBe(links)
  expect(createdShares(d.faults['west']!)).toBe(links)
  expect(d.mirrors.failovers).toHaveLength(1)
  const server = await serverTargets(d.server, 'corp')
  expect(Object.values(server).every((targets) => targets.length === 1 && targets[0]?.startsWith('west/'))).toBe(true)
  expect(Object.keys(server)).toHaveLength(links)
}

describe('crashes outside the failover workflow', () => {
  it('a crash between the link becoming failingOver and its workflow starting: recover() starts the workflow afresh', async () => {
    const d = await manyLinks(1)
    const crashing = await openNamespace(d, { engine: dyingEngine(() => true) })
    expect(await settled(crashing.ns.failover({ namespace: 'corp', path: '/l0' }))).toBeInstanceOf(InjectedCrash)
    const node = await crashing.ns.get({ namespace: 'corp', path: '/l0' })
    expect(node.protection?.state).toBe('failingOver')
    expect(await crashing.workflows.history(node.protection?.workflowId ?? '')).toBeUndefined()
    expect(createdShares(d.faults['west']!)).toBe(0)
    await expectAllFailedOver(d, 1)
  })

  it('the process dies with 100 failovers in flight or queued (4 at once): each resumes, one share created per link, one mirror failover', async () => {
    const d = await manyLinks(100, { automaticFailover: true, failuresBeforeInaccessible: 1 })
    let dead = false
    const crashAt = (point: CrashPoint): boolean => {
      if (point.step === 'switch-link' && point.phase === 'before') dead = true
      return dead
    }
    const crashing = await openNamespace(d, { crashAt, engine: dyingEngine(() => dead), failoverConcurrency: 4 })
    await d.raw['east']!.setOnline('data', false, { scope: 'namespace-test', value: 1 })
    expect(await crashing.ns.probeNow()).toMatchObject({ failoversStarted: 100 })
    await crashing.ns.idle()
    const nodes = await crashing.ns.list({ namespace: 'corp' })
    expect(nodes.filter((node) => node.protection?.state === 'failingOver')).toHaveLength(100)
    const started = await Promise.all(nodes.map((node) => crashing.workflows.history(node.protection?.workflowId ?? '')))
    expect(started.filter((history) => history === undefined).length).toBeGreaterThan(0)
    expect(started.filter((history) => history !== undefined).length).toBeGreaterThan(0)
    await expectAllFailedOver(d, 100)
  })
})
