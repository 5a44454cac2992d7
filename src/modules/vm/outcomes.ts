import * as t from 'io-ts'

/**
 * Per-VM result of a failover, a test failover, a failback or a single restore: the outcome, where the VM runs,
 * the backup it came from, that backup's time, and why it failed (`no-backup-data` for a protected VM the
 * destination holds no backup of).
 *
 * @public
 */
export const VmOutcomeCodec = t.type(
  {
    vmId: t.string,
    outcome: t.union([t.literal('restored'), t.literal('already-restored'), t.literal('failed')]),
    host: t.union([t.string, t.null]),
    backupId: t.union([t.string, t.null]),
    restoredPointInTime: t.union([t.number, t.null]),
    reason: t.union([t.string, t.null]),
  },
  'VmOutcome',
)

/**
 * One VM's outcome.
 *
 * @public
 */
export type VmOutcome = t.TypeOf<typeof VmOutcomeCodec>

/**
 * What a failover run resolves with: the plan, the run, the site it failed over to, the outcome and every
 * protected VM's own outcome.
 *
 * @public
 */
export const VmFailoverReportCodec = t.type(
  {
    planId: t.string,
    runId: t.string,
    site: t.string,
    outcome: t.union([t.literal('succeeded'), t.literal('partially-succeeded'), t.literal('failed')]),
    vms: t.array(VmOutcomeCodec),
  },
  'VmFailoverReport',
)

/**
 * One failover report.
 *
 * @public
 */
export type VmFailoverReport = t.TypeOf<typeof VmFailoverReportCodec>

/**
 * A failed outcome for `vmId` with `reason` (nothing restored).
 *
 * @public
 */
export function failedOutcome(vmId: string, reason: string, host: string | null = null, backupId: string | null = null): VmOutcome {
  return { vmId, outcome: 'failed', host, backupId, restoredPointInTime: null, reason }
}

/**
 * The overall outcome of per-VM outcomes: `succeeded` when none failed, `failed` when none was restored.
 *
 * @public
 */
export function overallOutcome(outcomes: readonly VmOutcome[]): VmFailoverReport['outcome'] {
  const failed = outcomes.filter((o) => o.outcome === 'failed').length
  return failed === 0 ? 'succeeded' : failed === outcomes.length ? 'failed' : 'partially-succeeded'
}
