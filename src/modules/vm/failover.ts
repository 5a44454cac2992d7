import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import { runChildren } from './children.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideEndFailover } from './decide.js'
import { DiscoveredBackupCodec, ScanTargetCodec, scanBackups, type DiscoveredBackup } from './discovery.js'
import { SelectedVmCodec, SourceFenceCodec, breakMirrors, cycleStorage, fenceSource, holdReplicas, releaseReplicas } from './failover-steps.js'
import type { VmFailoverWorkflowInput } from './failover-input.js'
import type { DrPlan } from './inputs.js'
import { stepWith, runWith } from './journaled-step.js'
import { VmFailoverReportCodec, VmOutcomeCodec, failedOutcome, overallOutcome, type VmFailoverReport, type VmOutcome } from './outcomes.js'
import { HostChoiceCodec, UnplacedVmCodec, isProtected, placeVms, qualifiedHost } from './placement.js'
import { VM_RESTORE_WORKFLOW, VmRestoreWorkflowInput } from './restore.js'
import { nameOf } from './restore-steps.js'
import { placementAt, planMirrors, planVms } from './sites.js'
import type { VmState } from './state.js'
import { cleanupTest } from './test-cleanup.js'

export { VM_FAILOVER_WORKFLOW, VmFailoverWorkflowInput } from './failover-input.js'
export type { DiscoveredBackup } from './discovery.js'
export type { VmFailoverReport } from './outcomes.js'

const Placement = t.type({ done: t.array(t.string), placed: t.array(HostChoiceCodec), unplaced: t.array(UnplacedVmCodec) }, 'FailoverPlacement')

/**
 * The failover of a plan to a site (its destination, or a tertiary site): fix the set of VMs the run is about;
 * fence the source (power its VMs off when it answers); break the mirror of every backup volume of those VMs
 * (from the destination alone), take the volumes offline and online again and scan them for backups; place the
 * newest complete backup of every protected VM found on an alternate host of the plan (never on a failed original
 * host; a VM an earlier run registered stays where it is); restore them in parallel (bounded by the plan) as child
 * workflows, so one VM's failure does not stop the others and a crash resumes every VM exactly once; record where
 * each went and the outcome in one journal append. Every protected VM is in the report: one with no backup on the
 * site fails with `no-backup-data`. VMs a previous run restored are left alone. A test failover fences and breaks
 * nothing and touches no replica: it holds each backup volume's newest replicated snapshot, restores renamed VMs
 * on the isolated network from it, checks they run, and cleans everything up. Journaled step results are decoded
 * with their codecs on replay.
 *
 * @public
 */
export async function runFailover(ctx: VmContext, wf: WorkflowContext, input: VmFailoverWorkflowInput): Promise<Json> {
  const plan = planOf(ctx, input.planId)
  const site = input.site ?? plan.destination
  const token = ctx.token()
  const tag = nameOf(`drkit.vm.test-${input.runId}`)
  let stage = 'select'
  try {
    const selected = await stepWith(wf, t.array(SelectedVmCodec), 'select', async () => {
      const mirrors = new Map(planMirrors(ctx.store.state, plan, site).map((m) => [m.vmId, m.mirror]))
      return planVms(ctx.store.state, plan)
        .filter((vmId) => affected(input.failedHosts, ctx.store.state.backups[vmId]?.at(-1)?.hostName))
        .map((vmId) => ({ vmId, mirror: mirrors.get(vmId) ?? null }))
    })
    if (!input.test) {
      stage = 'fence'
      await stepWith(wf, SourceFenceCodec, 'fence-source', async () => {
        const fence = await fenceSource(ctx, plan.source, selected.map((vm) => vm.vmId), token)
        ctx.events.emit('vm.sourceFenced', fence.reachable ? 'warning' : 'info', { planId: plan.id, runId: input.runId, ...fence })
        return fence
      })
    }
    stage = 'break'
    const targets = input.test
      ? await stepWith(wf, t.array(ScanTargetCodec), 'replicas', () => holdReplicas(ctx, site, selected, plan.maxParallel, tag, token), {
          compensate: (held) => releaseReplicas(ctx, site, held, tag, token),
        })
      : await stepWith(wf, t.array(ScanTargetCodec), 'break', () => breakMirrors(ctx, selected, plan.maxParallel))
    if (!input.test) {
      stage = 'storage-cycle'
      await stepWith(wf, t.null, 'cycle', async () => {
        await cycleStorage(ctx, site, targets, plan.maxParallel, token)
        return null
      })
    }
    stage = 'scan'
    const found = await stepWith(wf, t.array(DiscoveredBackupCodec), 'scan', async () => {
      const discovered = await scanBackups(siteOf(ctx, site).storage, targets, plan.maxParallel, (m) => isProtected(plan, { id: m.vmId, tags: m.tags, host: m.hostName }) && affected(input.failedHosts, m.hostName))
      ctx.events.emit('vm.backupDataDiscovered', 'info', { site, count: discovered.length, vms: discovered.map((d) => d.metadata.vmId) })
      return discovered
    })
    if (found.length === 0) throw new DrError('E_NOT_FOUND', `no backup data found on ${site} for plan "${plan.id}"`, { plan: plan.id, reason: 'no-backup-data' })
    stage = 'place'
    const placement = await stepWith(wf, Placement, 'place', () => place(ctx, plan, site, found, input.test))
    stage = 'restore'
    const outcomes = await stepWith(wf, t.array(VmOutcomeCodec), 'restore-all', async () => {
      const restored = await restoreAll(ctx, plan, site, input, found, placement.placed)
      const skipped = placement.done.map((vmId): VmOutcome => {
        const placed = ctx.store.state.placed[vmId]
        return { vmId, outcome: 'already-restored', host: placed?.host ?? null, backupId: placed?.backupId ?? null, restoredPointInTime: null, reason: null }
      })
      const missed = placement.unplaced.map((miss) => failedOutcome(miss.vmId, miss.reason))
      const absent = selected.filter((vm) => !found.some((d) => d.metadata.vmId === vm.vmId)).map((vm) => failedOutcome(vm.vmId, 'no-backup-data'))
      return [...restored, ...skipped, ...missed, ...absent].sort((a, b) => (a.vmId < b.vmId ? -1 : 1))
    })
    if (input.test) {
      await stepWith(wf, t.null, 'cleanup', async () => {
        await cleanupTest(ctx, site, testPrefix(input.runId), found.map((d) => d.metadata))
        await releaseReplicas(ctx, site, targets, tag, token)
        ctx.events.emit('vm.testFailoverCleanedUp', 'info', { planId: plan.id, runId: input.runId, vms: found.map((d) => d.metadata.vmId) })
        return null
      })
    }
    const outcome = overallOutcome(outcomes)
    await stepWith(wf, t.null, 'finish', async () => {
      const placements = input.test ? [] : placementsOf(outcomes, found, site, input.runId)
      await commit(ctx, (state) => decideEndFailover(state, plan.id, input.runId, outcome, placements))
      return null
    })
    const restored = outcomes.filter((o) => o.outcome !== 'failed').map((o) => o.vmId)
    const failed = outcomes.filter((o) => o.outcome === 'failed').map((o) => o.vmId)
    ctx.events.emit('vm.failoverCompleted', outcome === 'succeeded' ? 'info' : 'error', { planId: plan.id, runId: input.runId, outcome, restored, failed })
    const report: VmFailoverReport = { planId: plan.id, runId: input.runId, site, outcome, vms: outcomes }
    return VmFailoverReportCodec.encode(report)
  } catch (error) {
    if (isInterruption(error)) throw error
    const failure = toDrError(error)
    const reason = typeof failure.details['reason'] === 'string' ? failure.details['reason'] : failure.message
    await commit(ctx, (state) => decideEndFailover(state, plan.id, input.runId, 'failed'))
    ctx.events.emit('vm.failoverFailed', 'critical', { planId: plan.id, runId: input.runId, stage, reason })
    throw failure
  }
}

/**
 * Places the discovered backups' VMs on the hosts of `site`: VMs a previous run restored there are done; the
 * others are placed by the site's rule, those registered there already (an earlier run failed or stopped after
 * registering them) pinned to their host. The hosts and the registered VMs are read at once.
 */
async function place(ctx: VmContext, plan: DrPlan, site: string, found: readonly DiscoveredBackup[], test: boolean): Promise<t.TypeOf<typeof Placement>> {
  const { host } = siteOf(ctx, site)
  const done = found.filter((d) => !test && ctx.store.state.placed[d.metadata.vmId]?.site === site).map((d) => d.metadata.vmId)
  const todo = found.filter((d) => !done.includes(d.metadata.vmId))
  const [hosts, registered] = await Promise.all([callAdapter(host.kind, 'listHosts', () => host.listHosts()), test ? [] : callAdapter(host.kind, 'listVms', () => host.listVms())])
  const wanted = new Set(todo.map((d) => d.metadata.vmId))
  const pinned = new Map(registered.filter((vm) => wanted.has(vm.id)).map((vm) => [vm.id, vm.host]))
  const needs = todo.map((d) => ({ vmId: d.metadata.vmId, cpus: d.metadata.cpus, memoryMb: d.metadata.memoryMb, tags: d.metadata.tags, paths: d.metadata.disks.map((disk) => disk.mountPath) }))
  const exclude = new Set(found.map((d) => qualifiedHost(plan.source, d.metadata.hostName)))
  const result = placeVms(placementAt(plan, site), site, needs, hosts, exclude, pinned)
  for (const choice of result.placed) ctx.events.emit('vm.alternateHostSelected', 'info', { vmId: choice.vmId, hostName: choice.host, skipped: choice.skipped, source: 'dr-plan' })
  for (const miss of result.unplaced) ctx.events.emit('vm.noAlternateHostAvailable', 'error', { vmId: miss.vmId, reason: miss.reason })
  return { done, placed: result.placed, unplaced: result.unplaced }
}

/** Restores every placed VM as a child workflow, `maxParallel` at once. */
function restoreAll(
  ctx: VmContext,
  plan: DrPlan,
  site: string,
  input: VmFailoverWorkflowInput,
  found: readonly DiscoveredBackup[],
  placed: ReadonlyArray<t.TypeOf<typeof HostChoiceCodec>>,
): Promise<VmOutcome[]> {
  const backupOf = (vmId: string): DiscoveredBackup => found.find((d) => d.metadata.vmId === vmId) as DiscoveredBackup
  return runChildren(
    placed,
    plan.maxParallel,
    (choice) => {
      const backup = backupOf(choice.vmId)
      const child: VmRestoreWorkflowInput = {
        runId: input.runId,
        planId: plan.id,
        site,
        volume: backup.volume,
        slot: backup.slot,
        snapshot: backup.snapshot,
        backupId: backup.metadata.backupId,
        host: choice.host,
        hostNameSource: 'dr-plan',
        kind: input.test ? 'test' : 'dr',
        prefix: testPrefix(input.runId),
        network: input.network,
        pathMap: plan.pathMap,
        overwrite: false,
        originalHost: backup.metadata.hostName,
        found: { metadata: backup.metadata, start: backup.start },
      }
      return runWith(ctx.workflows, VmOutcomeCodec, VM_RESTORE_WORKFLOW, `${input.runId}/${choice.vmId}`, child, VmRestoreWorkflowInput)
    },
    (choice, reason) => {
      ctx.events.emit('vm.restoreFailed', 'error', { vmId: choice.vmId, reason })
      return failedOutcome(choice.vmId, reason, choice.host, backupOf(choice.vmId).metadata.backupId)
    },
  )
}

/** Where a failover restored each VM, for the catalog. */
function placementsOf(outcomes: readonly VmOutcome[], found: readonly DiscoveredBackup[], site: string, runId: string): Array<{ vmId: string; placed: VmState['placed'][string] }> {
  return outcomes.flatMap((o) => {
    const backup = found.find((d) => d.metadata.vmId === o.vmId)
    if (o.outcome !== 'restored' || o.host === null || backup === undefined) return []
    return [{ vmId: o.vmId, placed: { site, host: o.host, backupId: backup.metadata.backupId, runId, originalHost: backup.metadata.hostName } }]
  })
}

/**
 * True when a VM whose backups name `host` is affected by a failover limited to `failedHosts` (null: all are).
 *
 * @public
 */
export function affected(failedHosts: readonly string[] | null, host: string | undefined): boolean {
  return failedHosts === null || (host !== undefined && failedHosts.includes(host))
}

/**
 * The name prefix of a test failover's VMs and volumes.
 *
 * @public
 */
export function testPrefix(runId: string): string {
  return `t${runId.replace(/[^A-Za-z0-9]/g, '').slice(-12)}`
}
