/**
 * drkit/etcd: the journal, leader election and fence tokens on an etcd cluster, for coordinators that run on
 * more than one machine. Needs the `etcd3` package (an optional peer dependency of drkit) and etcd 3.3 or later.
 *
 * ```ts
 * import { createDrSystem } from 'drkit'
 * import { etcdCoordination } from 'drkit/etcd'
 *
 * const { state, leases } = etcdCoordination({ hosts: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'] })
 * await using dr = await createDrSystem({ state, leases, leaseTtlMs: 10_000, sites: { … } })
 * ```
 *
 * The journal and the leases must come from the same `etcdCoordination` (or at least share the prefix): once the
 * system holds its lease, every journal write checks in etcd that the lease still holds its scope.
 *
 * @packageDocumentation
 */

export { EtcdStateStore, etcdStateStore } from './etcd-state-store.js'
export type { EtcdStateStoreOptions, EtcdWatchLag } from './etcd-state-store.js'
export { EtcdLeaseManager, etcdLeaseManager } from './etcd-lease-manager.js'
export type { AcquireOptions } from '../../kernel/fencing.js'
export type { EtcdLeaseManagerOptions } from './etcd-lease-manager.js'
export { EtcdLease } from './etcd-lease.js'
export type { EtcdLeaseGrant } from './etcd-lease.js'
export { etcdCoordination } from './etcd-coordination.js'
export type { EtcdCoordination, EtcdCoordinationOptions } from './etcd-coordination.js'
export { EtcdConnection, EtcdConnectionOptionsCodec, EtcdKeyPrefix } from './etcd-connection.js'
export type { EtcdConnectionOptions } from './etcd-connection.js'
