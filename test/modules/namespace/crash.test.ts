import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import type { NamespaceDocument, NamespaceLink } from '../../../src/ports/network.js'
import { createdShares, namespaceDurable, openNamespace, serverTargets, settled } from '../../fixtures/namespace-world.js'

const link = { namespace: 'corp', path: '/eng' }
const POLICY = { name: 'gold', automaticFailover: true, breakMirror: true, preFailoverHook: { script: 'pre' }, postFailoverHook: { script: 'post' } }

async function setup() {
  const d = await namespaceDurable()
  const w = await openNamespace(d)
  await w.ns.createNamespace({ namespace: 'corp' })
  await w.ns.createLink({ namespace: 'corp', path: '/eng', targets: [{ site: 'east', share: 'eng' }] })
  await w.ns.createLink({ namespace: 'corp', path: '/eng-alias', targets: [{ site: 'east', share: 'eng' }] })
  await w.ns.createPolicy(POLICY)
  for (const path of ['/eng', '/eng-alias']) await w.ns.protect({ namespace: 'corp', path, policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
  return d
}

/** Every document or patch ever sent to the namespace server gave every link it wrote at least one target. */
function everyWriteHadTargets(d: Awaited<ReturnType<typeof setup>>): boolean {
  const written = d.serverFaults.calls.flatMap((call): readonly NamespaceLink[] => {
    if (call.method === 'writeNamespace') return (call.args[0] as NamespaceDocument).links
    if (call.method === 'patchNamespace') return (call.args[0] as { set: readonly NamespaceLink[] }).set
    return []
  })
  return written.length > 0 && written.every((l) => l.targets.length > 0)
}

/** The link ended in `state` on `site/share` in drkit's copy and on the server, and no write ever lost a target. */
async function expectLinkOn(w: Awaited<ReturnType<typeof openNamespace>>, state: string, site: string, share: string): Promise<void> {
  const node = await w.ns.get(link)
  expect(node.protection?.state).toBe(state)
  expect(node.targets).toEqual([{ site, share, state: 'active' }])
  expect((await serverTargets(w.server, 'corp'))['/eng']).toEqual([`${site}/${share}:active`])
  expect(everyWriteHadTargets(w)).toBe(true)
}

async function crashPoints(): Promise<CrashPoint[]> {
  const d = await setup()
  const points: CrashPoint[] = []
  const w = await openNamespace(d, { crashAt: (p) => void points.push(p) === undefined && false })
  await w.ns.failover(link)
  return points.filter((p) => p.workflowId.includes('/eng:') || p.workflowId.endsWith(':/eng') || p.workflowId.includes(':/eng:'))
}

describe('crash at every failover step, then resume', async () => {
  const points = await crashPoints()

  it('covers every step of the failover, before and after it', () => {
    expect([...new Set(points.map((p) => p.step))]).toEqual(['pre-hook', 'destination-share', 'switch-link', 'push-namespace', 'fail-over-mirror', 'post-hook'])
    expect(points.map((p) => p.phase)).toEqual(points.map((_, i) => (i % 2 === 0 ? 'before' : 'after')))
  })

  for (const point of points) {
    it(`crash ${point.phase} step ${point.index} (${point.step}): after resume the link is failed over, no link ever had zero targets, no share was created twice`, async () => {
      const d = await setup()
      let fired = false
      const crashing = await openNamespace(d, {
        crashAt: (p) => {
          if (fired || p.index !== point.index || p.phase !== point.phase || p.step !== point.step) return false
          fired = true
          return true
        },
      })
      const crashed = await settled(crashing.ns.failover(link))
      expect(crashed).toBeInstanceOf(InjectedCrash)
      for (const node of await crashing.ns.list({ namespace: 'corp' })) expect(node.targets.length).toBeGreaterThan(0)
      expect((await crashing.ns.get(link)).protection?.state).toBe('failingOver')

      const restarted = await openNamespace(d)
      expect(await restarted.ns.recover()).toEqual({ resumed: 1, failed: 0 })
      await expectLinkOn(restarted, 'failedOver', 'west', 'eng_dr')
      expect(createdShares(d.faults['west']!)).toBe(1)
      expect(d.mirrors.failovers).toHaveLength(1)
      expect(restarted.names('namespace.linkFailedOver')).toHaveLength(1)

      await restarted.ns.failover({ namespace: 'corp', path: '/eng-alias' })
      expect(createdShares(d.faults['west']!)).toBe(1)
      expect(d.mirrors.failovers).toHaveLength(1)
    })
  }

  it('a crash while compensating a failed switch resumes the compensation: the link is back on its primary, marked failoverError', async () => {
    const d = await setup()
    d.serverFaults.fail({ method: 'patchNamespace' })
    let fired = false
    const crashing = await openNamespace(d, { crashAt: (p) => p.phase === 'compensate' && !fired && (fired = true) })
    const failing = settled(crashing.ns.failover(link))
    for (let i = 0; i < 10; i++) await d.clock.advance(2_000)
    expect(await failing).toBeInstanceOf(InjectedCrash)
    expect((await crashing.ns.get(link)).targets).toEqual([{ site: 'west', share: 'eng_dr', state: 'active' }])
    d.serverFaults.reset()
    const restarted = await openNamespace(d)
    expect(await restarted.ns.recover()).toEqual({ resumed: 0, failed: 1 })
    await expectLinkOn(restarted, 'failoverError', 'east', 'eng')
  })

  it('a module opened with monitoring resumes an interrupted failover by itself', async () => {
    const d = await setup()
    const crashing = await openNamespace(d, { crashAt: (p) => p.step === 'switch-link' && p.phase === 'before' })
    await crashing.ns.failover(link).catch(() => undefined)
    const restarted = await openNamespace(d, { monitor: true })
    await restarted.ns.idle()
    await d.clock.advance(0)
    await restarted.ns.idle()
    expect((await restarted.ns.get(link)).protection?.state).toBe('failedOver')
    await restarted.module.close()
  })
})

describe('crash at every failback step, then resume', () => {
  for (const step of ['switch-link', 'push-namespace']) {
    for (const phase of ['before', 'after'] as const) {
      it(`crash ${phase} ${step}: after resume the link is back on its primary and never had zero targets`, async () => {
        const d = await setup()
        const w = await openNamespace(d)
        await w.ns.failover(link)
        d.mirrors.returnTo('m1', { site: 'east', volume: 'data' })
        let fired = false
        const crashing = await openNamespace(d, {
          crashAt: (p) => p.workflowId.startsWith('namespace.failback') && p.step === step && p.phase === phase && !fired && (fired = true),
        })
        expect(await settled(crashing.ns.failback(link))).toBeInstanceOf(InjectedCrash)
        const restarted = await openNamespace(d)
        expect(await restarted.ns.recover()).toEqual({ resumed: 1, failed: 0 })
        await expectLinkOn(restarted, 'protected', 'east', 'eng')
      })
    }
  }
})
