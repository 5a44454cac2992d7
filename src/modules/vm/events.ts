/**
 * Who or what asked for a backup.
 *
 * @public
 */
export type BackupTrigger = 'schedule' | 'administrator' | 'failback'

export type { VmOutcome } from './outcomes.js'

/**
 * The events of the VM module, by name, with their payloads.
 *
 * @public
 */
export interface VmEvents {
  'vm.planSaved': { planId: string; derivedFromHostApi: boolean }
  'vm.planWarning': { planId: string; code: 'same-location' | 'replication-more-frequent-than-backup' | 'no-vm-matched' | 'anti-affinity-unknown-vm'; message: string }
  'vm.planUnplaceable': { planId: string; site: string; vms: ReadonlyArray<{ vmId: string; reason: string }> }
  'vm.backupRequested': { planId: string; vmId: string; trigger: BackupTrigger }
  'vm.applicationsQuiesced': { vmId: string; applicationConsistent: boolean; writers: readonly string[] }
  'vm.unquiesceFailed': { vmId: string; attempts: number; reason: string }
  'vm.snapshotCreated': { vmId: string; backupId: string; volumes: readonly string[] }
  'vm.backupMetadataStored': { vmId: string; backupId: string; volume: string; slot: number }
  'vm.backupCompleted': { vmId: string; backupId: string; consistency: 'application-consistent' | 'crash-consistent'; takenAt: number }
  'vm.backupFailed': { vmId: string; stage: 'quiesce' | 'snapshot' | 'store'; reason: string }
  'vm.replicationRelationshipCreated': { vmId: string; mirror: string }
  'vm.replicationRelationshipReused': { vmId: string; mirror: string }
  'vm.replicationRequested': { vmId: string; mirror: string; deltaSet: number }
  'vm.replicationFailed': { vmId: string; mirror: string; reason: string }
  'vm.failoverInitiated': { planId: string; runId: string; by: 'administrator' | 'dr-services'; test: boolean; site: string }
  'vm.sourceFenced': { planId: string; runId: string; reachable: boolean; fenced: readonly string[]; unanswered: readonly string[] }
  'vm.mirrorBroken': { vmId: string; mirror: string }
  'vm.storageOffline': { site: string; volume: string }
  'vm.storageOnline': { site: string; volume: string }
  'vm.backupDataDiscovered': { site: string; count: number; vms: readonly string[] }
  'vm.alternateHostSelected': { vmId: string; hostName: string; skipped: readonly string[]; source: 'dr-plan' | 'caller' | 'metadata' }
  'vm.noAlternateHostAvailable': { vmId: string; reason: string }
  'vm.restoreStarted': { vmId: string; backupId: string; metadataHostName: string; designatedHostName: string; hostNameSource: 'dr-plan' | 'caller' | 'metadata' }
  'vm.vmRegistered': { vmId: string; hostName: string }
  'vm.vmPoweredOn': { vmId: string; hostName: string }
  'vm.restoreCompleted': { vmId: string; hostName: string; backupId: string; restoredPointInTime: number }
  'vm.restoreFailed': { vmId: string; reason: string }
  'vm.restoreUndoFailed': { vmId: string; step: string; reason: string }
  'vm.failoverCompleted': { planId: string; runId: string; outcome: 'succeeded' | 'partially-succeeded' | 'failed'; restored: readonly string[]; failed: readonly string[] }
  'vm.failoverFailed': { planId: string; runId: string; stage: string; reason: string }
  'vm.testFailoverCleanedUp': { planId: string; runId: string; vms: readonly string[] }
  'vm.failbackCompleted': { planId: string; restored: readonly string[]; failed: readonly string[] }
  'vm.failbackCompensated': { vmId: string; site: string; reason: string }
}
