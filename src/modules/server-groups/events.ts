import type { Discrepancy } from './prevalidate.js'
import type { GroupOperation } from './state.js'

/**
 * The events of server groups, with typed payloads. `serverGroup.operationFailed` reports a group operation whose
 * workflow failed, once its compensations have run: `compensated` lists the steps that were undone (a load, unload,
 * move or configuration change that fails puts back what it had changed; a resync or a failover stops where it is).
 *
 * @public
 */
export type ServerGroupEvents = {
  'serverGroup.defined': { name: string; sites: readonly string[]; members: readonly string[] }
  'serverGroup.changed': { name: string }
  'serverGroup.checked': { name: string; site: string; reason: 'failover' | 'configChange' | 'compare'; discrepancies: readonly Discrepancy[] }
  'serverGroup.reserved': { name: string; site: string; interfaces: readonly string[]; mounts: readonly string[]; nameRecords: readonly string[]; forced: boolean }
  'serverGroup.loaded': { name: string; site: string; warnings: readonly string[] }
  'serverGroup.loadWarned': { name: string; site: string; interface: string; detail: string }
  'serverGroup.unloaded': { name: string; site: string }
  'serverGroup.unloadDeferred': { name: string; site: string; reason: string }
  'serverGroup.failedOver': { name: string; from: string; to: string; forced: boolean; members: readonly string[] }
  'serverGroup.partiallyFailedOver': { name: string; from: string; to: string; failedOver: readonly string[]; failed: ReadonlyArray<{ member: string; code: string; message: string }> }
  'serverGroup.resynced': { name: string; site: string; members: readonly string[] }
  'serverGroup.operationFailed': { name: string; operation: GroupOperation['kind']; workflowId: string; code: string; message: string; compensated: readonly string[] }
  'serverGroup.memberMarkedOutOfSync': { name: string; member: string; code: string; message: string }
  'serverGroup.memberReinitialized': { name: string; member: string }
  'serverGroup.seriesSnapshotTaken': { name: string; snapshot: string; reason: string; members: ReadonlyArray<{ id: string; snapshot: string; sequence: number }> }
  'serverGroup.deleted': { name: string }
}
