import * as t from 'io-ts'
import { Name, implementing } from './kernel/codecs.js'
import { StreamName } from './kernel/state-store-input.js'
import type { Clock } from './kernel/clock.js'
import type { LeaseManager } from './kernel/fencing.js'
import type { StateStore } from './kernel/state-store.js'
import type { StoragePort } from './ports/storage.js'
import type { NetworkPort } from './ports/network.js'
import type { HostPort } from './ports/host.js'

const StoragePortCodec = implementing<StoragePort>('StoragePort', ['createVolume', 'read', 'write', 'createSnapshot', 'changedBlocks', 'fence', 'unfence', 'close'])
const NetworkPortCodec = implementing<NetworkPort>('NetworkPort', ['listen', 'connect', 'probe', 'close'])
const HostPortCodec = implementing<HostPort>('HostPort', ['listHosts', 'registerVm', 'powerOn', 'mount', 'dismount', 'close'])
const StateStoreCodec = implementing<StateStore>('StateStore', ['append', 'read', 'version', 'listStreams', 'subscribe', 'fence', 'close'])
const ClockCodec = implementing<Clock>('Clock', ['now', 'setTimer', 'sleep'])
const LeaseManagerCodec = implementing<LeaseManager>('LeaseManager', ['acquire'])

/**
 * The adapters of one site: storage is required; network and host are needed by the modules that use them.
 *
 * @public
 */
export interface SiteConfig {
  readonly storage: StoragePort
  readonly network?: NetworkPort
  readonly host?: HostPort
}

/**
 * Codec for {@link SiteConfig}.
 *
 * @public
 */
export const SiteConfigCodec: t.Type<SiteConfig, SiteConfig, unknown> = t.intersection(
  [t.type({ storage: StoragePortCodec }), t.partial({ network: NetworkPortCodec, host: HostPortCodec })],
  'SiteConfig',
) as unknown as t.Type<SiteConfig, SiteConfig, unknown>

/**
 * Everything `createDrSystem` needs: the state store (journal), the sites by name, and optionally the clock,
 * the lease manager (in-process by default; etcd for several coordinators) and this coordinator's name.
 *
 * @public
 */
export interface DrSystemConfig {
  readonly state: StateStore
  readonly sites: Readonly<Record<string, SiteConfig>>
  readonly clock?: Clock
  readonly leases?: LeaseManager
  /**
   * The coordinator's name, the holder of its lease; unique per coordinator (default: host name, process id and a
   * random suffix).
   */
  readonly coordinator?: string
  /**
   * The scope this system leads (default `drkit/system`): its lease, and the scope of the fence token every adapter
   * call carries. Systems that lead different scopes run side by side, each with one leader at a time, even on
   * shared adapters (each adapter keeps one token floor per scope); give each its own journal (for etcd, its own
   * prefix).
   */
  readonly scope?: string
  /** Lease time-to-live for this coordinator (default 15 s); it is renewed at a third of it. */
  readonly leaseTtlMs?: number
  /**
   * The site whose network adapter serves the logical namespace (`network.namespaceServer`); default: the first
   * site, by name, that has a network adapter.
   */
  readonly namespaceSite?: string
}

const SitesCodec = new t.Type<Readonly<Record<string, SiteConfig>>, Readonly<Record<string, SiteConfig>>, unknown>(
  'Sites (at least one, named like "east")',
  (u): u is Readonly<Record<string, SiteConfig>> => typeof u === 'object' && u !== null && Object.keys(u).length > 0,
  (u, c) => {
    if (typeof u !== 'object' || u === null || Array.isArray(u) || Object.keys(u).length === 0) return t.failure(u, c)
    for (const [site, config] of Object.entries(u)) {
      if (!Name.is(site)) return t.failure(site, [...c, { key: site, type: Name, actual: site }])
      const siteContext = [...c, { key: site, type: SiteConfigCodec, actual: config }]
      const decoded = SiteConfigCodec.validate(config, siteContext)
      if (decoded._tag === 'Left') return decoded
    }
    return t.success(u as Readonly<Record<string, SiteConfig>>)
  },
  t.identity,
)

/**
 * Codec for {@link DrSystemConfig}: checks that every adapter is an object with the port's methods, that site
 * names are valid names and that there is at least one site.
 *
 * @public
 */
export const DrSystemConfigCodec: t.Type<DrSystemConfig, DrSystemConfig, unknown> = t.intersection(
  [
    t.type({ state: StateStoreCodec, sites: SitesCodec }),
    t.partial({ clock: ClockCodec, leases: LeaseManagerCodec, coordinator: Name, scope: StreamName, leaseTtlMs: t.number, namespaceSite: Name }),
  ],
  'DrSystemConfig',
) as unknown as t.Type<DrSystemConfig, DrSystemConfig, unknown>
