import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import type { VmFailoverWorkflowInput } from './failover-input.js'
import type { DrPlan } from './inputs.js'
import type { BackupRecord, VmMirrorRecord, PlacedVm, VmJournalEvent, VmState } from './state.js'

/**
 * Saving a plan: refused while a failover of it runs; nothing happens when it is unchanged.
 *
 * @public
 */
export function decideSavePlan(state: VmState, plan: DrPlan): DrEither<readonly VmJournalEvent[]> {
  if (state.failovers[plan.id]?.running === true) return E.left(new DrError('E_CONFLICT', `DR plan "${plan.id}" is failing over; it cannot change now`, { plan: plan.id }))
  if (JSON.stringify(state.plans[plan.id]) === JSON.stringify(plan)) return E.right([])
  return E.right([{ type: 'vm.planSaved', data: plan }])
}

/**
 * Deleting a plan: it must exist and no failover of it may run.
 *
 * @public
 */
export function decideDeletePlan(state: VmState, id: string): DrEither<readonly VmJournalEvent[]> {
  if (state.plans[id] === undefined) return E.left(new DrError('E_NOT_FOUND', `DR plan "${id}" does not exist`, { plan: id }))
  if (state.failovers[id]?.running === true) return E.left(new DrError('E_CONFLICT', `DR plan "${id}" is failing over`, { plan: id }))
  return E.right([{ type: 'vm.planDeleted', data: { id } }])
}

/**
 * Recording a completed backup (idempotent: a backup id recorded already adds nothing).
 *
 * @public
 */
export function decideRecordBackup(state: VmState, vmId: string, backup: BackupRecord): DrEither<readonly VmJournalEvent[]> {
  if ((state.backups[vmId] ?? []).some((b) => b.backupId === backup.backupId)) return E.right([])
  return E.right([{ type: 'vm.backupRecorded', data: { vmId, backup } }])
}

/**
 * Recording the mirror relationship of a VM's backup volume under its catalog key (see `mirrorKey`; idempotent).
 *
 * @public
 */
export function decideRecordMirror(state: VmState, key: string, record: VmMirrorRecord): DrEither<readonly VmJournalEvent[]> {
  return E.right(JSON.stringify(state.mirrors[key]) === JSON.stringify(record) ? [] : [{ type: 'vm.mirrorRecorded', data: { vmId: key, record } }])
}

/**
 * Beginning a failover run of a plan with the input its workflow will run with: one run per plan at a time (a
 * second request is refused with `E_CONFLICT`; the same run id again is a resume and adds nothing).
 *
 * @public
 */
export function decideBeginFailover(state: VmState, planId: string, runId: string, by: string, input: VmFailoverWorkflowInput): DrEither<readonly VmJournalEvent[]> {
  if (state.plans[planId] === undefined) return E.left(new DrError('E_NOT_FOUND', `DR plan "${planId}" does not exist`, { plan: planId }))
  const current = state.failovers[planId]
  if (current?.running === true) {
    if (current.runId === runId) return E.right([])
    return E.left(new DrError('E_CONFLICT', `DR plan "${planId}" is failing over already (run ${current.runId})`, { plan: planId, runId: current.runId }))
  }
  return E.right([{ type: 'vm.failoverBegun', data: { planId, runId, by, input } }])
}


/**
 * Forgetting a restored VM's placement (after failback; idempotent).
 *
 * @public
 */
export function decideUnplace(state: VmState, vmId: string): DrEither<readonly VmJournalEvent[]> {
  return E.right(state.placed[vmId] === undefined ? [] : [{ type: 'vm.vmUnplaced', data: { vmId } }])
}

/**
 * Ending a failover run with its outcome, recording where it restored each VM in the same journal append
 * (idempotent: placements already recorded and a run already ended add nothing).
 *
 * @public
 */
export function decideEndFailover(
  state: VmState,
  planId: string,
  runId: string,
  outcome: string,
  placements: ReadonlyArray<{ readonly vmId: string; readonly placed: PlacedVm }> = [],
): DrEither<readonly VmJournalEvent[]> {
  const current = state.failovers[planId]
  if (current === undefined || current.runId !== runId || !current.running) return E.right([])
  const placed: VmJournalEvent[] = placements
    .filter((p) => JSON.stringify(state.placed[p.vmId]) !== JSON.stringify(p.placed))
    .map((p) => ({ type: 'vm.vmPlaced', data: { vmId: p.vmId, placed: p.placed } }))
  return E.right([...placed, { type: 'vm.failoverEnded', data: { planId, runId, outcome } }])
}
