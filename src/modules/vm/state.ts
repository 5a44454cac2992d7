import * as t from 'io-ts'
import type { Draft } from 'immer'
import { VmFailoverWorkflowInput } from './failover-input.js'
import { DrPlanCodec } from './inputs.js'

/**
 * A backup as the catalog of the site that took it records it: id, sequence, slot of the backup volume, time,
 * the host the VM ran on, consistency, the name of the consistency-group snapshot of the VM's disks, and the plan
 * it was taken for (absent in records journaled before plans were recorded).
 *
 * @public
 */
export const BackupRecordCodec = t.intersection(
  [
    t.type({
      backupId: t.string,
      seq: t.number,
      site: t.string,
      slot: t.number,
      takenAt: t.number,
      hostName: t.string,
      consistency: t.union([t.literal('application-consistent'), t.literal('crash-consistent')]),
      snapshot: t.string,
    }),
    t.partial({ planId: t.string }),
  ],
  'BackupRecord',
)

/**
 * One catalogued backup.
 *
 * @public
 */
export type BackupRecord = t.TypeOf<typeof BackupRecordCodec>

/**
 * Where a VM was restored by a failover (or a failback): site, host, the backup used and the run that did it.
 *
 * @public
 */
export const PlacedVmCodec = t.type({ site: t.string, host: t.string, backupId: t.string, runId: t.string, originalHost: t.string }, 'PlacedVm')

/**
 * One restored VM.
 *
 * @public
 */
export type PlacedVm = t.TypeOf<typeof PlacedVmCodec>

/**
 * The mirror relationship that replicates a VM's backup volume, the plan it serves and the site it replicates to
 * (absent: the plan's destination). The catalog keys the destination's record by VM id and a tertiary site's by
 * `<vmId>@<site>` (see `mirrorKey`).
 *
 * @public
 */
export const VmMirrorRecordCodec = t.intersection([t.type({ mirror: t.string, planId: t.string }), t.partial({ site: t.string })], 'VmMirrorRecord')

/**
 * One VM's backup mirror record.
 *
 * @public
 */
export type VmMirrorRecord = t.TypeOf<typeof VmMirrorRecordCodec>

/**
 * The failover state of a plan: the run in progress (or the last one), who started it, its outcome, and the
 * input its workflow runs with (absent in records journaled before it was kept), so a run whose workflow never
 * started can still be started.
 *
 * @public
 */
export const VmFailoverRecordCodec = t.intersection(
  [
    t.type({
      runId: t.string,
      by: t.string,
      running: t.boolean,
      outcome: t.union([t.null, t.string]),
    }),
    t.partial({ input: VmFailoverWorkflowInput }),
  ],
  'VmFailoverRecord',
)

/**
 * The VM module's catalog: plans, backups per VM (per site), the mirror relationship of each VM's backup volume,
 * failovers per plan and the VMs a failover restored. Plain, serialisable data.
 *
 * @public
 */
export const VmStateCodec = t.type({
  plans: t.record(t.string, DrPlanCodec),
  backups: t.record(t.string, t.array(BackupRecordCodec)),
  mirrors: t.record(t.string, VmMirrorRecordCodec),
  failovers: t.record(t.string, VmFailoverRecordCodec),
  placed: t.record(t.string, PlacedVmCodec),
})

/**
 * The VM module's state.
 *
 * @public
 */
export type VmState = t.TypeOf<typeof VmStateCodec>

/**
 * The empty catalog.
 *
 * @public
 */
export const emptyVmState: VmState = { plans: {}, backups: {}, mirrors: {}, failovers: {}, placed: {} }

/**
 * The journal events of the VM catalog.
 *
 * @public
 */
export const VmJournalEventCodec = t.union([
  t.type({ type: t.literal('vm.planSaved'), data: DrPlanCodec }),
  t.type({ type: t.literal('vm.planDeleted'), data: t.type({ id: t.string }) }),
  t.type({ type: t.literal('vm.backupRecorded'), data: t.type({ vmId: t.string, backup: BackupRecordCodec }) }),
  t.type({ type: t.literal('vm.mirrorRecorded'), data: t.type({ vmId: t.string, record: VmMirrorRecordCodec }) }),
  t.type({ type: t.literal('vm.failoverBegun'), data: t.intersection([t.type({ planId: t.string, runId: t.string, by: t.string }), t.partial({ input: VmFailoverWorkflowInput })]) }),
  t.type({ type: t.literal('vm.vmPlaced'), data: t.type({ vmId: t.string, placed: PlacedVmCodec }) }),
  t.type({ type: t.literal('vm.vmUnplaced'), data: t.type({ vmId: t.string }) }),
  t.type({ type: t.literal('vm.failoverEnded'), data: t.type({ planId: t.string, runId: t.string, outcome: t.string }) }),
])

/**
 * One journal event of the VM catalog.
 *
 * @public
 */
export type VmJournalEvent = t.TypeOf<typeof VmJournalEventCodec>

/**
 * Applies one journal event to a draft of the catalog.
 *
 * @public
 */
export function reduceVmState(draft: Draft<VmState>, event: VmJournalEvent): void {
  switch (event.type) {
    case 'vm.planSaved':
      draft.plans[event.data.id] = event.data
      return
    case 'vm.planDeleted':
      delete draft.plans[event.data.id]
      return
    case 'vm.backupRecorded': {
      const kept = (draft.backups[event.data.vmId] ?? []).filter((b) => !(b.site === event.data.backup.site && b.slot === event.data.backup.slot))
      kept.push(event.data.backup)
      draft.backups[event.data.vmId] = kept.sort((a, b) => a.seq - b.seq)
      return
    }
    case 'vm.mirrorRecorded':
      draft.mirrors[event.data.vmId] = event.data.record
      return
    case 'vm.failoverBegun': {
      const { planId, runId, by, input } = event.data
      draft.failovers[planId] = input === undefined ? { runId, by, running: true, outcome: null } : { runId, by, running: true, outcome: null, input }
      return
    }
    case 'vm.vmPlaced':
      draft.placed[event.data.vmId] = event.data.placed
      return
    case 'vm.vmUnplaced':
      delete draft.placed[event.data.vmId]
      return
    case 'vm.failoverEnded':
      draft.failovers[event.data.planId] = { runId: event.data.runId, by: draft.failovers[event.data.planId]?.by ?? 'administrator', running: false, outcome: event.data.outcome }
      return
  }
}
