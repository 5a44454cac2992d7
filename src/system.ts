import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { DrError } from './kernel/errors.js'
import { decode } from './kernel/decode.js'
import { EventBus } from './kernel/events.js'
import { systemClock, type Clock } from './kernel/clock.js'
import { MemoryLeaseManager, type FenceToken, type Lease } from './kernel/fencing.js'
import { WorkflowEngine, type WorkflowEvents } from './kernel/workflow.js'
import type { StateStore } from './kernel/state-store.js'
import type { StoragePort } from './ports/storage.js'
import type { NetworkPort } from './ports/network.js'
import type { HostPort } from './ports/host.js'
import { DrSystemConfigCodec, type DrSystemConfig } from './system-config.js'
import { presentTokenToSites, type TakeoverReport } from './system-takeover.js'
import { openSnapshotModule } from './modules/snapshot/module.js'
import type { SnapshotFacade } from './modules/snapshot/facade.js'
import type { SnapshotEvents } from './modules/snapshot/events.js'
import { openVolumeModule } from './modules/volume/module.js'
import type { VolumeFacade } from './modules/volume/facade.js'
import type { VolumeEvents } from './modules/volume/events.js'
import { openMirrorModule, type MirrorEvents, type MirrorFacade } from './modules/mirror/index.js'
import { openEvMirrorModule, type EvMirrorEvents, type EvMirrorFacade } from './modules/ev-mirror/index.js'
import { openServerGroupsModule, type ServerGroupEvents, type ServerGroupFacade } from './modules/server-groups/index.js'
import { openVmModule, type VmEvents, type VmFacade } from './modules/vm/index.js'
import { openFreezeModule, type FreezeEvents, type FreezeFacade, type ReplicaLocation } from './modules/freeze/index.js'
import { mirrorControlFrom, openNamespaceModule, type NamespaceEvents, type NamespaceFacade } from './modules/namespace/index.js'

/**
 * Every event a {@link DrSystem} publishes, by name. Modules add theirs as they land.
 *
 * @public
 */
export type DrEvents = WorkflowEvents &
  SnapshotEvents &
  VolumeEvents &
  MirrorEvents &
  EvMirrorEvents &
  ServerGroupEvents &
  VmEvents &
  FreezeEvents &
  NamespaceEvents & {
    'system.leaseLost': { scope: string; holder: string }
    'system.recovered': { resumed: number; failed: number }
    'system.closed': { coordinator: string }
  }

/**
 * A site as the system holds it: its name and its adapters. Asking for a port the site was not given rejects
 * with `E_PRECONDITION`.
 *
 * @public
 */
export interface Site {
  readonly name: string
  readonly storage: StoragePort
  network(): NetworkPort
  host(): HostPort
}

/**
 * A running drkit system: sites, events, the durable workflow engine and the coordinator's lease. Close it
 * with `close()` or `await using`.
 *
 * @public
 */
export interface DrSystem extends AsyncDisposable {
  /** Typed events of every module (`dr.events.on('mirror.failedOver', …)`), also as an async iterator. */
  readonly events: EventBus<DrEvents>
  /** Snapshots: create, list, delete, restore, clone, hold, schedules and retention. */
  readonly snapshots: SnapshotFacade
  /** Expandable volumes: create, expand, shrink, objects, consistency-group snapshots under ordered fences. */
  readonly volumes: VolumeFacade
  /**
   * IP replication between sites: sessions, delta sets, failover (`sync`, default, `now`), resync, failback,
   * planned swap, epochs. Needs a network adapter on every site that takes part.
   */
  readonly mirrors: MirrorFacade
  /**
   * The logical namespace: folders and link points, data-protection policies, share-level monitoring and
   * automatic failover of a link point to the mirrored secondary share. Its namespace server is the
   * `namespaceServer` of the network adapter of the site named by `namespaceSite` in the configuration.
   */
  readonly namespace: NamespaceFacade
  /**
   * Replication of expandable volumes: member relationships plus one for the whole volume, consistency-group
   * snapshot transfers that resize the destination first and move its read redirect last, failover, resync.
   */
  readonly evMirrors: EvMirrorFacade
  /**
   * Server groups (virtual servers): configuration, network identity and expandable volumes replicated and failed
   * over together, with prevalidation at the destination and a group-consistent snapshot series.
   */
  readonly serverGroups: ServerGroupFacade
  /**
   * VM disaster recovery: DR plans, application-consistent backups with metadata, their replication through
   * `dr.mirrors`, failover and test failover to alternate hosts, failback, single-VM restore. Needs host adapters.
   */
  readonly vms: VmFacade
  /**
   * Non-disruptive volume restore: volume handles behind an I/O gate, disruption detection, and a restore that
   * freezes only the affected I/O and actors, restores from a snapshot, a mirror's destination (by mirror id)
   * or a standby volume, remounts with the same path and identity, replays journaled writes and thaws.
   */
  readonly freeze: FreezeFacade
  /** The durable workflow engine on the system's journal. */
  readonly workflows: WorkflowEngine
  /** The journal. */
  readonly stateStore: StateStore
  /** The clock every module reads. */
  readonly clock: Clock
  /** This coordinator's name (lease holder). */
  readonly coordinator: string
  /** The scope this coordinator leads (`drkit/system` unless configured). */
  readonly scope: string
  /** The names of the configured sites. */
  readonly siteNames: readonly string[]
  /** One site by name; `E_NOT_FOUND` if it is not configured. */
  site(name: string): Site
  /** The fence token of this coordinator's system lease; `E_FENCED` once the lease is lost. */
  token(): FenceToken
  /**
   * How this coordinator presented its token to every port of every site when it started (so that a deposed
   * coordinator is refused everywhere at once), and which ports it could not reach.
   */
  readonly takeover: TakeoverReport
  /**
   * Resumes every workflow that a previous coordinator left unfinished (crash, lost lease), in journal order.
   * Runs at start-up; call it again after taking over from another coordinator.
   */
  recover(): Promise<{ resumed: number; failed: number }>
  /** Stops timers, closes the event bus, the adapters and the state store. Idempotent. */
  close(): Promise<void>
}

const SYSTEM_SCOPE = 'drkit/system'

/** A name no other coordinator has: host, process and a random suffix (hosts and pids repeat across containers). */
function defaultCoordinatorName(): string {
  return `${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}-${randomUUID().slice(0, 8)}`
}

function buildSite(name: string, config: DrSystemConfig['sites'][string]): Site {
  const missing = (port: string): DrError =>
    new DrError('E_PRECONDITION', `site "${name}" has no ${port} adapter configured`, { site: name, port })
  return {
    name,
    storage: config.storage,
    network: () => {
      if (config.network === undefined) throw missing('network')
      return config.network
    },
    host: () => {
      if (config.host === undefined) throw missing('host')
      return config.host
    },
  }
}

/**
 * Builds a drkit system from validated configuration: sites and their adapters, the journal, the clock and a
 * lease for this coordinator's scope (renewed in the background). Once it holds the lease, it binds the journal's
 * writes to the lease's token (`StateStore.fence`), presents the token to every port, and resumes what a previous
 * coordinator left unfinished; every workflow then runs under the lease. Rejects with `E_INVALID_INPUT` (naming
 * the field) on bad configuration, having opened nothing.
 *
 * @public
 */
export async function createDrSystem(config: DrSystemConfig): Promise<DrSystem> {
  const valid = decode(DrSystemConfigCodec, config, 'createDrSystem config')
  const clock = valid.clock ?? systemClock
  const coordinator = valid.coordinator ?? defaultCoordinatorName()
  const scope = valid.scope ?? SYSTEM_SCOPE
  const leaseTtlMs = valid.leaseTtlMs ?? 15_000
  const leases = valid.leases ?? new MemoryLeaseManager(clock, { defaultTtlMs: leaseTtlMs })
  const events = new EventBus<DrEvents>(() => clock.now())
  const sites = new Map(Object.entries(valid.sites).map(([name, site]) => [name, buildSite(name, site)]))
  if (valid.namespaceSite !== undefined && valid.sites[valid.namespaceSite]?.network === undefined) {
    throw new DrError('E_INVALID_INPUT', `createDrSystem config: field "namespaceSite" names "${valid.namespaceSite}", which is not a site with a network adapter`, {
      field: 'namespaceSite',
    })
  }
  const lease: Lease = await leases.acquire(scope, coordinator, { ttlMs: leaseTtlMs })
  try {
    // From here on a coordinator that loses this lease cannot write the journal any more.
    await valid.state.fence(lease.token)
  } catch (error) {
    await lease.release()
    throw error
  }
  const workflows = new WorkflowEngine({ stateStore: valid.state, clock, events, lease })
  let closed = false
  let cancelRenewal = (): void => undefined
  const scheduleRenewal = (): void => {
    cancelRenewal = clock.setTimer(Math.max(1, Math.floor(leaseTtlMs / 3)), () => {
      lease.renew().then(scheduleRenewal, () => {
        if (!closed) events.emit('system.leaseLost', 'critical', { scope, holder: coordinator })
      })
    })
  }
  scheduleRenewal()
  const token = (): FenceToken => {
    if (closed || !lease.isValid()) throw new DrError('E_FENCED', `coordinator "${coordinator}" no longer holds the lease of "${scope}"`, { coordinator, scope })
    return lease.token
  }
  const takeover = await presentTokenToSites(valid.sites, lease.token, clock)
  const siteOf = (name: string): Site => {
    const site = sites.get(name)
    if (site === undefined) throw new DrError('E_NOT_FOUND', `site "${name}" is not configured`, { site: name, known: [...sites.keys()] })
    return site
  }
  const snapshots = await openSnapshotModule({
    stateStore: valid.state,
    workflows,
    storage: (name) => siteOf(name).storage,
    events,
    clock,
    token,
  })
  const volumes = await openVolumeModule({ stateStore: valid.state, workflows, storage: (name) => siteOf(name).storage, events, clock, token })
  const mirrors = await openMirrorModule({
    stateStore: valid.state,
    workflows,
    sites: (name) => {
      const site = siteOf(name)
      return { storage: site.storage, network: site.network() }
    },
    events,
    clock,
    token,
  })
  snapshots.scheduler.addGuard(mirrors.retentionGuard)
  const evMirrors = await openEvMirrorModule({
    stateStore: valid.state,
    workflows,
    volumes: volumes.facade,
    sites: (name) => {
      const site = siteOf(name)
      return { storage: site.storage, network: site.network() }
    },
    events,
    clock,
    token,
  })
  const serverGroups = await openServerGroupsModule({
    stateStore: valid.state,
    workflows,
    evMirrors: evMirrors.facade,
    volumes: volumes.facade,
    sites: (name) => {
      const site = siteOf(name)
      return { network: site.network(), host: site.host() }
    },
    events,
    clock,
    token,
  })
  const vms = await openVmModule({
    stateStore: valid.state,
    workflows,
    sites: (name) => {
      const site = siteOf(name)
      return { storage: site.storage, host: site.host() }
    },
    mirrors: mirrors.facade,
    events,
    clock,
    token,
  })
  const freeze = await openFreezeModule({
    stateStore: valid.state,
    workflows,
    storage: (name) => siteOf(name).storage,
    host: (name) => siteOf(name).host(),
    events,
    clock,
    token,
    // A `replica` restore source names a mirror: restore from its destination at the newest applied delta set.
    resolveReplica: async (mirrorId): Promise<ReplicaLocation> => {
      const status = await mirrors.facade.status(mirrorId)
      if (status.recoveryPoint === null) {
        throw new DrError('E_PRECONDITION', `mirror "${mirrorId}" has no delta set applied at its destination yet`, { mirror: mirrorId })
      }
      return { site: status.destination.site, volume: status.destination.volume, snapshot: status.recoveryPoint.snapshot }
    },
  })
  const namespaceSite = valid.namespaceSite ?? Object.keys(valid.sites).filter((name) => valid.sites[name]?.network !== undefined).sort()[0]
  const namespace = await openNamespaceModule({
    stateStore: valid.state,
    workflows,
    storage: (name) => siteOf(name).storage,
    host: (name) => siteOf(name).host(),
    namespaceServer: () => {
      if (namespaceSite === undefined) throw new DrError('E_PRECONDITION', 'no site has a network adapter, so there is no namespace server', {})
      return siteOf(namespaceSite).network().namespaceServer
    },
    mirrors: mirrorControlFrom(mirrors.facade),
    events,
    clock,
    token,
  })
  const recover = async (): Promise<{ resumed: number; failed: number }> => {
    let resumed = 0
    let failed = 0
    for (const id of await workflows.listRunning()) {
      try {
        await workflows.resume(id)
        resumed++
      } catch {
        failed++
      }
    }
    events.emit('system.recovered', failed === 0 ? 'info' : 'warning', { resumed, failed })
    return { resumed, failed }
  }
  await recover()
  await mirrors.facade.recover()
  await evMirrors.facade.recover()
  await serverGroups.facade.recover()
  await vms.facade.recover()
  await freeze.facade.recover()
  snapshots.scheduler.start()

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    cancelRenewal()
    await snapshots.scheduler.stop()
    await namespace.close()
    await freeze.close()
    await vms.close()
    await serverGroups.close()
    await evMirrors.close()
    await mirrors.close()
    events.emit('system.closed', 'info', { coordinator })
    events.close()
    await lease.release()
    const adapters = Object.values(valid.sites).flatMap((site) => [site.storage, site.network, site.host])
    await Promise.allSettled(adapters.map((adapter) => adapter?.close()))
    await valid.state.close()
  }

  return {
    events,
    workflows,
    stateStore: valid.state,
    clock,
    coordinator,
    scope,
    siteNames: [...sites.keys()].sort(),
    snapshots: snapshots.facade,
    volumes: volumes.facade,
    mirrors: mirrors.facade,
    namespace: namespace.facade,
    evMirrors: evMirrors.facade,
    serverGroups: serverGroups.facade,
    vms: vms.facade,
    freeze: freeze.facade,
    site: siteOf,
    token,
    takeover,
    recover,
    close,
    [Symbol.asyncDispose]: close,
  }
}
