import { EtcdConnection } from './etcd-connection.js'
import { EtcdLeaseManager, type EtcdLeaseManagerOptions } from './etcd-lease-manager.js'
import { EtcdStateStore, type EtcdStateStoreOptions } from './etcd-state-store.js'

/**
 * Options of {@link etcdCoordination}: those of both the state store and the lease manager.
 *
 * @public
 */
export type EtcdCoordinationOptions = EtcdStateStoreOptions & EtcdLeaseManagerOptions

/**
 * The journal and the leases of one coordinator, on one etcd connection.
 *
 * @public
 */
export interface EtcdCoordination {
  /** The journal; closing it also closes `leases` (so `createDrSystem`'s close releases everything). */
  readonly state: EtcdStateStore
  /** Leader election and fence tokens. */
  readonly leases: EtcdLeaseManager
}

/**
 * Creates an etcd state store and lease manager that share one etcd connection, ready to hand to
 * `createDrSystem({ state, leases, … })`. Closing the state store (as the system does last when it closes)
 * releases the leases still held and closes the connection. Throws `E_INVALID_INPUT` on bad options.
 *
 * @public
 */
export function etcdCoordination(options: EtcdCoordinationOptions): EtcdCoordination {
  const connection = new EtcdConnection(options, 'etcdCoordination options').retain()
  try {
    const leases = new EtcdLeaseManager(options, { connection })
    const state = new EtcdStateStore(options, { connection, onClose: () => leases.close() })
    return { state, leases }
  } finally {
    connection.release()
  }
}
