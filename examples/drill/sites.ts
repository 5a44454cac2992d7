import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  MemoryNamespaceServer,
  createDrSystem,
  processHost,
  fileStateStore,
  localStorage,
  tcpNetwork,
  type DrSystem,
  type HostPort,
  type NamespaceServer,
  type StoragePort,
  type TcpNetwork,
} from '../../src/index.js'
import { injectFaults, type FaultInjector } from '../../src/testkit/index.js'
import { WanLink } from './wan-link.js'

/** Everything the drill runs on: the system, and the levers that take site east off the map and bring it back. */
export interface DrillWorld {
  readonly dr: DrSystem
  readonly root: string
  /** The referral (DFS-like) server clients resolve logical paths with: yours in production. */
  readonly namespaceServer: NamespaceServer
  /** East's storage behind a switch: `crash()` makes every call fail as a dead array would. */
  readonly eastPower: FaultInjector<StoragePort>
  /** East's hypervisors behind the same kind of switch. */
  readonly eastHosts: FaultInjector<HostPort>
  /** The WAN link into each site (both drop when east is lost: the WAN is the only path between the sites). */
  readonly links: { readonly east: WanLink; readonly west: WanLink }
  /** Whether transfers show progress bars (not in the `--json` mode). */
  readonly showProgress: boolean
  /** Bytes carried by both WAN links so far. */
  wireBytes(): number
  /** Changed bytes of every delta set cut so far (`mirror.deltaSetCut`): what the mirrors set out to send. */
  cutBytes(): number
  /** Site east is lost: its storage and hypervisors stop answering and it drops off the network. */
  loseEast(): void
  /** Site east is back, with whatever its disks held. */
  restoreEast(): void
  close(): Promise<void>
}

/**
 * Builds the drill's two sites on the embedded defaults — local storage under `root`, the file journal, TCP on
 * loopback between the sites (through a WAN link that can be cut) — and opens the system on them.
 */
export async function openDrillWorld(root: string, showProgress: boolean): Promise<DrillWorld> {
  await mkdir(root, { recursive: true })
  const namespaceServer = new MemoryNamespaceServer()
  const networks: Record<'east' | 'west', TcpNetwork> = {
    east: tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer }),
    west: tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer }),
  }
  const links = { east: await WanLink.open(await networks.east.address()), west: await WanLink.open(await networks.west.address()) }
  networks.east.setPeer('west', links.west.address())
  networks.west.setPeer('east', links.east.address())
  const eastPower = injectFaults<StoragePort>(localStorage({ dir: join(root, 'east') }), { name: 'east' })
  // VMs are child processes (the built-in guest answers quiesce requests); each site has its own hypervisors.
  const eastHosts = injectFaults<HostPort>(processHost({ workDir: join(root, 'east-hosts'), rootDir: join(root, 'east-root'), hosts: [{ name: 'hv-east-1', cpus: 8, memoryMb: 8192 }] }), {
    name: 'east.hosts',
  })
  const westHosts = processHost({
    workDir: join(root, 'west-hosts'),
    rootDir: join(root, 'west-root'),
    hosts: [
      { name: 'hv-west-1', cpus: 4, memoryMb: 4096 },
      { name: 'hv-west-2', cpus: 16, memoryMb: 32768 },
    ],
  })
  const dr = await createDrSystem({
    state: fileStateStore({ dir: join(root, 'journal') }),
    sites: {
      east: { storage: eastPower.port, network: networks.east, host: eastHosts.port },
      west: { storage: localStorage({ dir: join(root, 'west') }), network: networks.west, host: westHosts },
    },
    // The namespace server is reached through west's network adapter: it must stay reachable when east is lost.
    namespaceSite: 'west',
  })
  let cut = 0
  dr.events.on('mirror.deltaSetCut', (event) => (cut += event.payload.changedBytes))
  return {
    dr,
    root,
    namespaceServer,
    eastPower,
    eastHosts,
    links,
    showProgress,
    wireBytes: () => links.east.bytes + links.west.bytes,
    cutBytes: () => cut,
    loseEast: () => {
      eastPower.crash()
      eastHosts.crash()
      links.east.cut()
      links.west.cut()
    },
    restoreEast: () => {
      eastPower.restart()
      eastHosts.restart()
      links.east.restore()
      links.west.restore()
    },
    close: async () => {
      await dr.close()
      await Promise.all([links.east.close(), links.west.close()])
    },
  }
}
