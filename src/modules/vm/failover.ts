import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import { InjectedCrash, type WorkflowContext } from '../../kernel/workflow.js'
import { vmOfBackupVolume, type BackupMetadata } from './backup-layout.js'
import { readBackups } from './backup-volume.js'
import { mapBounded } from './bounded.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideEndFailover } from './decide.js'
import type { VmOutcome } from './events.js'
import { isProtected, placeVms, type HostChoice } from './placement.js'
import { VM_RESTORE_WORKFLOW, type VmRestoreWorkflowInput } from './restore.js'
import { cleanupTest } from './test-cleanup.js'

/** Mirror failovers run one at a time: the mirror module journals every relationship in one stream. */
const MIRROR_OPERATIONS_AT_ONCE = 1

/**
 * The workflow type of a failover (and of a test failover).
 *
 * @public
 */
export const VM_FAILOVER_WORKFLOW = 'vm.failover'

/**
 * Input of the failover workflow: plan, run id, who started it, and for a test failover the isolated network.
 *
 * @public
 */
export const VmFailoverWorkflowInput = t.type({
  planId: t.string,
  runId: t.string,
  by: t.union([t.literal('administrator'), t.literal('dr-services')]),
  test: t.boolean,
  network: t.union([t.string, t.null]),
  failedHosts: t.union([t.null, t.array(t.string)]),
})

/**
 * Input of one failover run.
 *
 * @public
 */
export type VmFailoverWorkflowInput = t.TypeOf<typeof VmFailoverWorkflowInput>

/**
 * A backup the scan found: the newest complete one of its VM, where it is and the snapshot to read it from.
 *
 * @public
 */
export interface DiscoveredBackup {
  readonly volume: string
  readonly slot: number
  readonly snapshot: string | null
  readonly metadata: BackupMetadata
}

/**
 * What a failover run resolves with: the plan, the run, the outcome and every VM's own outcome.
 *
 * @public
 */
export interface VmFailoverReport {
  readonly planId: string
  readonly runId: string
  readonly outcome: 'succeeded' | 'partially-succeeded' | 'failed'
  readonly vms: readonly VmOutcome[]
}

/**
 * The failover: break the mirror of every backup volume of the plan (from the destination alone), take the
 * destination backup volumes offline and online again, scan them for backups, place the newest complete backup
 * of every protected VM found on an alternate host of the plan (never on a failed original host), and restore
 * them in parallel (bounded by the plan) as child workflows, so one VM's failure does not stop the others and
 * a crash resumes every VM exactly once. VMs a previous run restored are left alone. A test failover breaks
 * nothing and touches no replica: it reads each backup volume's newest replicated snapshot, restores renamed
 * VMs on the isolated network, checks they run, and cleans everything up.
 *
 * @public
 */
export async function runFailover(ctx: VmContext, wf: WorkflowContext, input: VmFailoverWorkflowInput): Promise<Json> {
  const plan = planOf(ctx, input.planId)
  const { storage, host } = siteOf(ctx, plan.destination)
  const token = ctx.token()
  const mirrors = Object.entries(ctx.store.state.mirrors)
    .filter(([vmId, record]) => record.planId === plan.id && affected(input.failedHosts, ctx.store.state.backups[vmId]?.at(-1)?.hostName))
    .sort(([a], [b]) => (a < b ? -1 : 1))
  let stage = 'break'
  try {
    const snapshots = (await wf.step(input.test ? 'replicas' : 'break', async () => {
      const points = await mapBounded(mirrors, input.test ? plan.maxParallel : MIRROR_OPERATIONS_AT_ONCE, async ([vmId, record]) => {
        const status = await ctx.mirrors.status(record.mirror)
        if (input.test) return [vmId, status.recoveryPoint?.snapshot ?? null] as const
        if (status.state !== 'failedOver') await ctx.mirrors.failover(record.mirror, { mode: 'default' })
        ctx.events.emit('vm.mirrorBroken', 'warning', { vmId, mirror: record.mirror })
        return [vmId, null] as const
      })
      return Object.fromEntries(points)
    })) as Record<string, string | null>
    stage = 'storage-cycle'
    if (!input.test) {
      await wf.step('cycle', async () => {
        await mapBounded(mirrors, plan.maxParallel, async ([, record]) => {
          const volume = (await ctx.mirrors.status(record.mirror)).destination.volume
          await callAdapter(storage.kind, 'setOnline', () => storage.setOnline(volume, false, token))
          ctx.events.emit('vm.storageOffline', 'info', { site: plan.destination, volume })
          await callAdapter(storage.kind, 'setOnline', () => storage.setOnline(volume, true, token))
          ctx.events.emit('vm.storageOnline', 'info', { site: plan.destination, volume })
        })
        return null
      })
    }
    stage = 'scan'
    const found = (await wf.step('scan', async () => {
      const volumes = input.test
        ? Object.entries(snapshots).flatMap(([vmId, snapshot]) => (snapshot === null ? [] : [{ name: `drvm-${vmId}`, snapshot }]))
        : (await callAdapter(storage.kind, 'listVolumes', () => storage.listVolumes())).filter((v) => vmOfBackupVolume(v.name) !== undefined).map((v) => ({ name: v.name, snapshot: null }))
      const newest: DiscoveredBackup[] = []
      for (const volume of volumes) {
        const backups = await readBackups(storage, volume.name, volume.snapshot === null ? undefined : { snapshot: volume.snapshot })
        const last = backups
          .filter((b) => isProtected(plan, { id: b.metadata.vmId, tags: b.metadata.tags, host: b.metadata.hostName }) && affected(input.failedHosts, b.metadata.hostName))
          .pop()
        if (last !== undefined) newest.push({ volume: last.volume, slot: last.slot, snapshot: volume.snapshot, metadata: last.metadata })
      }
      ctx.events.emit('vm.backupDataDiscovered', 'info', { site: plan.destination, count: newest.length, vms: newest.map((d) => d.metadata.vmId) })
      return newest as unknown as Json
    })) as unknown as DiscoveredBackup[]
    if (found.length === 0) throw new DrError('E_NOT_FOUND', `no backup data found on ${plan.destination} for plan "${plan.id}"`, { plan: plan.id, reason: 'no-backup-data' })
    stage = 'place'
    const placement = (await wf.step('place', async () => {
      const done = found.filter((d) => !input.test && ctx.store.state.placed[d.metadata.vmId]?.site === plan.destination)
      const todo = found.filter((d) => !done.includes(d))
      const hosts = await callAdapter(host.kind, 'listHosts', () => host.listHosts())
      const result = placeVms(plan, todo.map((d) => ({ vmId: d.metadata.vmId, cpus: d.metadata.cpus, memoryMb: d.metadata.memoryMb, tags: d.metadata.tags })), hosts, new Set(found.map((d) => d.metadata.hostName)))
      for (const choice of result.placed) ctx.events.emit('vm.alternateHostSelected', 'info', { vmId: choice.vmId, hostName: choice.host, skipped: choice.skipped, source: 'dr-plan' })
      for (const miss of result.unplaced) ctx.events.emit('vm.noAlternateHostAvailable', 'error', { vmId: miss.vmId, reason: miss.reason })
      return { done: done.map((d) => d.metadata.vmId), placed: result.placed, unplaced: result.unplaced } as unknown as Json
    })) as unknown as { done: string[]; placed: HostChoice[]; unplaced: Array<{ vmId: string; reason: string }> }
    stage = 'restore'
    const outcomes = (await wf.step('restore-all', async () => {
      let crash: InjectedCrash | undefined
      const restored = await mapBounded(placement.placed, plan.maxParallel, async (choice): Promise<VmOutcome> => {
        if (crash !== undefined) return { vmId: choice.vmId, outcome: 'failed', host: null, backupId: null, restoredPointInTime: null, reason: 'coordinator stopped' }
        const backup = found.find((d) => d.metadata.vmId === choice.vmId) as DiscoveredBackup
        const child: VmRestoreWorkflowInput = {
          runId: input.runId,
          planId: plan.id,
          site: plan.destination,
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
        }
        try {
          return (await ctx.workflows.run(VM_RESTORE_WORKFLOW, `${input.runId}/${choice.vmId}`, child as unknown as Json)) as unknown as VmOutcome
        } catch (error) {
          if (error instanceof InjectedCrash) crash = error
          const reason = toDrError(error).message
          ctx.events.emit('vm.restoreFailed', 'error', { vmId: choice.vmId, reason })
          return { vmId: choice.vmId, outcome: 'failed', host: choice.host, backupId: backup.metadata.backupId, restoredPointInTime: null, reason }
        }
      })
      if (crash !== undefined) throw crash
      const skipped = placement.done.map((vmId): VmOutcome => {
        const placed = ctx.store.state.placed[vmId]
        return { vmId, outcome: 'already-restored', host: placed?.host ?? null, backupId: placed?.backupId ?? null, restoredPointInTime: null, reason: null }
      })
      const missed = placement.unplaced.map((miss): VmOutcome => ({ vmId: miss.vmId, outcome: 'failed', host: null, backupId: null, restoredPointInTime: null, reason: miss.reason }))
      return [...restored, ...skipped, ...missed].sort((a, b) => (a.vmId < b.vmId ? -1 : 1)) as unknown as Json
    })) as unknown as VmOutcome[]
    if (input.test) {
      await wf.step('cleanup', async () => {
        await cleanupTest(ctx, plan.destination, testPrefix(input.runId), found.map((d) => d.metadata))
        ctx.events.emit('vm.testFailoverCleanedUp', 'info', { planId: plan.id, runId: input.runId, vms: found.map((d) => d.metadata.vmId) })
        return null
      })
    }
    const restored = outcomes.filter((o) => o.outcome !== 'failed').map((o) => o.vmId)
    const failed = outcomes.filter((o) => o.outcome === 'failed').map((o) => o.vmId)
    const outcome = failed.length === 0 ? 'succeeded' : restored.length === 0 ? 'failed' : 'partially-succeeded'
    await wf.step('finish', async () => {
      await commit(ctx, (state) => decideEndFailover(state, plan.id, input.runId, outcome))
      return null
    })
    ctx.events.emit('vm.failoverCompleted', outcome === 'succeeded' ? 'info' : 'error', { planId: plan.id, runId: input.runId, outcome, restored, failed })
    const report: VmFailoverReport = { planId: plan.id, runId: input.runId, outcome, vms: outcomes }
    return report as unknown as Json
  } catch (error) {
    if (error instanceof InjectedCrash) throw error
    const failure = toDrError(error)
    const reason = typeof failure.details['reason'] === 'string' ? failure.details['reason'] : failure.message
    await commit(ctx, (state) => decideEndFailover(state, plan.id, input.runId, 'failed'))
    ctx.events.emit('vm.failoverFailed', 'critical', { planId: plan.id, runId: input.runId, stage, reason })
    throw failure
  }
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

