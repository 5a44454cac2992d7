import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import { mapBounded } from './bounded.js'
import { siteOf, type VmContext } from './context.js'
import { withDeadline } from './deadline.js'
import { SITE_PROBE_TIMEOUT_MS, siteAnswers } from './source-probe.js'
import type { ScanTarget } from './discovery.js'
import { holdRecoveryPoint } from './recovery-point.js'

/**
 * A VM a failover run is about, fixed in its first step (so a resumed run sees the same set): the VM and the
 * mirror relationship that replicates its backup volume to the run's site (null: never replicated there).
 *
 * @public
 */
export const SelectedVmCodec = t.type({ vmId: t.string, mirror: t.union([t.string, t.null]) }, 'SelectedVm')

/**
 * One selected VM.
 *
 * @public
 */
export type SelectedVm = t.TypeOf<typeof SelectedVmCodec>

/**
 * What fencing the source found: whether the source site answered, the VMs it powered off there and those whose
 * power-off got no answer.
 *
 * @public
 */
export const SourceFenceCodec = t.type({ reachable: t.boolean, fenced: t.array(t.string), unanswered: t.array(t.string) }, 'SourceFence')

/**
 * Fences the source VMs before a failover (against a split brain: the restored VMs must not run beside the
 * originals). When the source site answers this coordinator, every selected VM is powered off there (each call
 * bounded in time; a VM the source does not know is skipped); when it does not answer, nothing is tried.
 *
 * @public
 */
export async function fenceSource(ctx: VmContext, source: string, vms: readonly string[], token: FenceToken): Promise<t.TypeOf<typeof SourceFenceCodec>> {
  if (!(await siteAnswers(ctx, source))) return { reachable: false, fenced: [], unanswered: [] }
  const { host } = siteOf(ctx, source)
  const results = await mapBounded(vms, vms.length, async (vmId) => {
    try {
      await withDeadline(callAdapter(host.kind, 'powerOff', () => host.powerOff(vmId, token)), SITE_PROBE_TIMEOUT_MS, ctx.clock, () =>
        new DrError('E_TIMEOUT', `site ${source} did not power VM "${vmId}" off in time`, { vm: vmId }),
      )
      return { vmId, state: 'fenced' as const }
    } catch (error) {
      return { vmId, state: isDrError(error, 'E_NOT_FOUND') ? ('unknown' as const) : ('unanswered' as const) }
    }
  })
  return {
    reachable: true,
    fenced: results.filter((r) => r.state === 'fenced').map((r) => r.vmId),
    unanswered: results.filter((r) => r.state === 'unanswered').map((r) => r.vmId),
  }
}

/**
 * Breaks the mirror of every selected VM towards the run's site (from the destination alone when the source does
 * not answer), `parallel` at a time, and resolves with where each VM's backups are to be scanned.
 *
 * @public
 */
export async function breakMirrors(ctx: VmContext, vms: readonly SelectedVm[], parallel: number): Promise<ScanTarget[]> {
  const mirrored = vms.filter((vm): vm is { vmId: string; mirror: string } => vm.mirror !== null)
  return mapBounded(mirrored, parallel, async ({ vmId, mirror }) => {
    const status = await ctx.mirrors.status(mirror)
    if (status.state !== 'failedOver') await ctx.mirrors.failover(mirror, { mode: 'default' })
    ctx.events.emit('vm.mirrorBroken', 'warning', { vmId, mirror })
    return { vmId, volume: status.destination.volume, snapshot: null }
  })
}

/**
 * Holds the newest replicated snapshot (the recovery point) of every selected VM's backup volume with `tag`, so a
 * test failover reads one consistent snapshot that replication cannot retire meanwhile; a VM without a recovery
 * point is not a target.
 *
 * @public
 */
export async function holdReplicas(ctx: VmContext, site: string, vms: readonly SelectedVm[], parallel: number, tag: string, token: FenceToken): Promise<ScanTarget[]> {
  const mirrored = vms.filter((vm): vm is { vmId: string; mirror: string } => vm.mirror !== null)
  const held = await mapBounded(mirrored, parallel, async ({ vmId, mirror }): Promise<ScanTarget | undefined> => {
    const point = await holdRecoveryPoint(ctx, site, mirror, tag, token)
    return point === undefined ? undefined : { vmId, volume: point.volume, snapshot: point.snapshot }
  })
  return held.filter((target): target is ScanTarget => target !== undefined)
}

/** Releases what {@link holdReplicas} held (what is gone already is skipped). */
export async function releaseReplicas(ctx: VmContext, site: string, targets: readonly ScanTarget[], tag: string, token: FenceToken): Promise<void> {
  const { storage } = siteOf(ctx, site)
  for (const target of targets) {
    if (target.snapshot === null) continue
    const snapshot = target.snapshot
    await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(target.volume, snapshot, tag, token)).catch((error: unknown) => {
      if (!isDrError(error, 'E_NOT_FOUND')) throw error
    })
  }
}

/**
 * Takes every scanned backup volume on `site` offline and online again (the note's storage cycle, ¶0033), so the
 * now writable volumes are presented afresh.
 *
 * @public
 */
export async function cycleStorage(ctx: VmContext, site: string, targets: readonly ScanTarget[], parallel: number, token: FenceToken): Promise<void> {
  const { storage } = siteOf(ctx, site)
  await mapBounded(targets, parallel, async ({ volume }) => {
    await callAdapter(storage.kind, 'setOnline', () => storage.setOnline(volume, false, token))
    ctx.events.emit('vm.storageOffline', 'info', { site, volume })
    await callAdapter(storage.kind, 'setOnline', () => storage.setOnline(volume, true, token))
    ctx.events.emit('vm.storageOnline', 'info', { site, volume })
  })
}
