/**
 * Who or what asked for a backup.
 *
 * @public
 */
export type BackupTrigger = 'schedule' | 'administrator' | 'failback'

/**
 * Per-VM result of a failover, a test failover or a failback.
 *
 * @public
 */
export interface VmOutcome {
  readonly vmId: string
  readonly outcome: 'restored' | 'already-restored' | 'failed'
  readonly host: string | null
  readonly backupId: string | null
  readonly restoredPointInTime: number | null
  readonly reason: string | null
}

/**
 * The events of the VM module, by name, with their payloads.
 *
 * @public
 */
export interface VmEvents {
  'vm.planSaved': { planId: string }
  'vm.planWarning': { planId: string; code: 'same-location' | 'replication-slower-than-backup' | 'no-vm-matched'; message: string }
  'vm.planUnplaceable': { planId: string; vms: ReadonlyArray<{ vmId: string; reason: string }> }
  'vm.backupRequested': { planId: string; vmId: string; trigger: BackupTrigger }
  'vm.applicationsQuiesced': { vmId: string; applicationConsistent: boolean; writers: readonly string[] }
  'vm.snapshotCreated': { vmId: string; backupId: string; volumes: readonly string[] }
  'vm.backupMetadataStored': { vmId: string; backupId: string; volume: string; slot: number }
  'vm.backupCompleted': { vmId: string; backupId: string; consistency: 'application-consistent' | 'crash-consistent'; takenAt: number }
  'vm.backupFailed': { vmId: string; stage: 'quiesce' | 'snapshot' | 'store'; reason: string }
  'vm.replicationRelationshipCreated': { vmId: string; mirror: string }
  'vm.replicationRelationshipReused': { vmId: string; mirror: string }
  'vm.replicationRequested': { vmId: string; mirror: string; deltaSet: number }
  'vm.replicationFailed': { vmId: string; mirror: string; reason: string }
  'vm.failoverInitiated': { planId: string; runId: string; by: 'administrator' | 'dr-services'; test: boolean }
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
  'vm.failoverCompleted': { planId: string; runId: string; outcome: 'succeeded' | 'partially-succeeded' | 'failed'; restored: readonly string[]; failed: readonly string[] }
  'vm.failoverFailed': { planId: string; runId: string; stage: string; reason: string }
  'vm.testFailoverCleanedUp': { planId: string; runId: string; vms: readonly string[] }
  'vm.failbackCompleted': { planId: string; restored: readonly string[]; failed: readonly string[] }
}
