import { describe, expect, it } from 'vitest'
import { EventBus, InjectedCrash, ManualClock, WorkflowEngine, type CrashPoint } from '../../../src/kernel/index.js'
import { MemoryNamespaceServer } from '../../../src/adapters/memory/network.js'
import { memoryHost } from '../../../src/adapters/memory/host.js'
import { injectFaults, type FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { mirrorControlFrom, openNamespaceModule, type NamespaceEvents } from '../../../src/modules/namespace/index.js'
import { durable, openSystem, type Durable } from '../../fixtures/mirror-system.js'
import { BS, block, settle, token, until } from '../../fixtures/mirror-world.js'
import { createdShares, serverTargets, settled } from '../../fixtures/namespace-world.js'

const link = { namespace: 'corp', path: '/eng' }
const BLOCKS = 8

interface RealWorld {
  readonly d: Durable
  readonly west: FaultInjector<StoragePort>
  readonly server: MemoryNamespaceServer
}

/**
 * East's volume `db` exports share `eng` and is mirrored to west by the real mirror module (initial copy played
 * back); namespace `corp` has `/eng` on east/eng, protected by `gold` (automatic, breaks the mirror) with
 * destination share `eng_dr`. West's storage counts its calls.
 */
async function realWorld(): Promise<RealWorld> {
  let west: FaultInjector<StoragePort> | undefined
  const d = await durable({
    clock: new ManualClock(),
    sizeBlocks: 64,
    wrap: (site, storage) => {
      if (site !== 'west') return storage
      west = injectFaults<StoragePort>(storage, { name: 'storage.west' })
      return west.port
    },
  })
  const server = new MemoryNamespaceServer()
  const w = { d, west: west!, server }
  const setup = await coordinator(w)
  for (let b = 0; b < BLOCKS; b++) await d.raw['east']!.write('db', b * BS, block(b + 1), token)
  await d.raw['east']!.createShare({ name: 'eng', volume: 'db', path: '/', protocol: 'smb', access: ['read', 'write'] }, token)
  await setup.mirrors.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, transfer: { chunkSize: 4 * BS } })
  await until(async () => (await setup.mirrors.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
  await setup.ns.createNamespace({ namespace: 'corp' })
  await setup.ns.createLink({ ...link, targets: [{ site: 'east', share: 'eng' }] })
  await setup.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, mirrorFailoverMode: 'default' })
  await setup.ns.protect({ ...link, policy: 'gold', mirrorId: 'm', destinationShare: 'eng_dr' })
  await setup.close()
  west!.reset()
  return w
}

/** One coordinator process: the real mirror module and the namespace module over the same journal, crashing where told. */
async function coordinator(w: RealWorld, crashAt?: (point: CrashPoint) => boolean) {
  const { d } = w
  const mirrors = await openSystem(d, crashAt === undefined ? {} : { crashAt })
  const module = await openNamespaceModule({
    stateStore: d.stateStore,
    workflows: new WorkflowEngine({ stateStore: d.stateStore, clock: d.clock, ...(crashAt === undefined ? {} : { crashAt }) }),
    storage: (site) => d.storages[site]!,
    host: () => memoryHost({ clock: d.clock }),
    namespaceServer: () => w.server,
    mirrors: mirrorControlFrom(mirrors.mirrors),
    events: new EventBus<NamespaceEvents>(() => d.clock.now()),
    clock: d.clock,
    token: () => token,
    monitor: false,
  })
  const close = async (): Promise<void> => {
    await module.close().catch(() => undefined)
    await mirrors.module.close()
  }
  return { mirrors, ns: module.facade, close }
}

/** Every crash point a link failover passes through: its own steps and those of the mirror failover it drives. */
async function crashPoints(): Promise<CrashPoint[]> {
  const w = await realWorld()
  const points: CrashPoint[] = []
  const c = await coordinator(w, (point) => {
    if (point.phase !== 'compensate') points.push(point)
    return false
  })
  await c.ns.failover(link)
  await c.close()
  return points.filter((point) => point.workflowId.startsWith('namespace.failover') || point.workflowId.startsWith('mirror.failover'))
}

describe('crash at every step of a link failover driving the real mirror module, then resume', async () => {
  const points = await crashPoints()

  it('passes through the link failover steps and the mirror failover steps', () => {
    const kinds = new Set(points.map((point) => point.workflowId.split(':')[0]))
    expect(kinds).toEqual(new Set(['namespace.failover', 'mirror.failover']))
    expect(points.filter((point) => point.step === 'fail-over-mirror')).toHaveLength(2)
  })

  for (const point of points) {
    const kind = point.workflowId.split(':')[0]
    it(`crash ${point.phase} ${kind} step ${point.index} (${point.step}): resumed, the link is on the mirrored share, the mirror failed over once, one share created`, async () => {
      const w = await realWorld()
      let fired = false
      const same = (p: CrashPoint): boolean => p.workflowId.split(':')[0] === kind && p.index === point.index && p.phase === point.phase && p.step === point.step
      const crashing = await coordinator(w, (p) => !fired && same(p) && (fired = true))
      expect(await settled(crashing.ns.failover(link))).toBeInstanceOf(InjectedCrash)
      expect((await crashing.ns.get(link)).targets.length).toBeGreaterThan(0)
      await crashing.close()
      await settle(20)

      const restarted = await coordinator(w)
      expect(await restarted.ns.recover()).toEqual({ resumed: 1, failed: 0 })
      const node = await restarted.ns.get(link)
      expect(node.protection?.state).toBe('failedOver')
      expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'] })
      const status = await restarted.mirrors.mirrors.status('m')
      expect(status.state).toBe('failedOver')
      expect(status.epoch).toBe(2)
      expect(await w.d.writableNow()).toEqual(['west'])
      expect(w.d.violations).toEqual([])
      expect(createdShares(w.west)).toBe(1)
      const referral = await w.server.resolve('corp', '/eng/data.bin')
      const share = await w.d.storages[referral.target.site]!.getShare(referral.target.share)
      expect(share).toMatchObject({ volume: 'db', access: ['read', 'write'] })
      const data = await w.d.storages[referral.target.site]!.read(share!.volume, 0, BLOCKS * BS)
      for (let b = 0; b < BLOCKS; b++) expect(data[b * BS]).toBe((b + 1) & 0xff)
      await restarted.close()
    })
  }
})
