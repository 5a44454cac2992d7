import { DrError, callAdapter } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import type { Json } from '../../kernel/codecs.js'
import type { VmInfo } from '../../ports/host.js'
import { backupVolumeName, type BackupMetadata } from './backup-layout.js'
import { readBackups, type FoundBackup } from './backup-volume.js'
import { VM_BACKUP_WORKFLOW, VmBackupWorkflowInput, runBackup } from './backup.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideBeginFailover, decideDeletePlan, decideSavePlan } from './decide.js'
import type { BackupTrigger, VmOutcome } from './events.js'
import { VM_FAILBACK_WORKFLOW, VmFailbackWorkflowInput, runFailback } from './failback.js'
import { VM_FAILOVER_WORKFLOW, VmFailoverWorkflowInput, runFailover, type VmFailoverReport } from './failover.js'
import {
  VmBackupNowInput,
  VmFailbackInput,
  VmFailoverInput,
  VmPlanId,
  VmRestoreInput,
  VmSavePlanInput,
  VmTestFailoverInput,
  type VmBackupNowOptions,
  type VmFailbackOptions,
  type VmFailoverOptions,
  type DrPlan,
  type VmRestoreOptions,
  type VmSavePlanOptions,
  type VmTestFailoverOptions,
} from './inputs.js'
import { nextBackup } from './next-backup.js'
import { isProtected, validatePlan, type DrPlanReport } from './placement.js'
import { replicateVm } from './replication.js'
import { VM_RESTORE_WORKFLOW, VmRestoreWorkflowInput, runRestore } from './restore.js'
import { PlanScheduler } from './scheduler.js'

/**
 * The VM facade (`dr.vms`): DR plans (validated, with the placement a failover would make reported before any
 * disaster), application-consistent backups with their metadata stored with them, replication of the backups
 * through the mirror module on the plan's schedule, failover to alternate hosts, test failover, failback and
 * the restore of one VM from any backup to any host. Every method validates its input first and rejects with a
 * `DrError`; a rejected call changes nothing. Long operations are durable workflows; {@link VmFacade.recover}
 * resumes the ones a crash interrupted.
 *
 * @public
 */
export class VmFacade {
  readonly #ctx: VmContext
  readonly #scheduler: PlanScheduler
  readonly #busy = new Map<string, Promise<unknown>>()
  #sequence = 0

  /** @internal Built by `openVmModule`; reach it as `dr.vms`. */
  constructor(ctx: VmContext) {
    this.#ctx = ctx
    ctx.workflows.register(VM_BACKUP_WORKFLOW, { input: VmBackupWorkflowInput, run: (wf, input) => runBackup(ctx, wf, input) })
    ctx.workflows.register(VM_RESTORE_WORKFLOW, { input: VmRestoreWorkflowInput, run: (wf, input) => runRestore(ctx, wf, input) })
    ctx.workflows.register(VM_FAILOVER_WORKFLOW, { input: VmFailoverWorkflowInput, run: (wf, input) => runFailover(ctx, wf, input) })
    ctx.workflows.register(VM_FAILBACK_WORKFLOW, { input: VmFailbackWorkflowInput, run: (wf, input) => runFailback(ctx, wf, input) })
    this.#scheduler = new PlanScheduler(ctx.clock, { backup: (id) => this.#scheduledBackups(id), replicate: (id) => this.#scheduledReplication(id) })
    for (const plan of Object.values(ctx.store.state.plans)) this.#scheduler.arm(plan)
  }

  /**
   * Creates or replaces a DR plan, arms its backup and replication schedules and resolves with its validation
   * report (placement of every protected VM on the destination now, VMs that cannot be placed, warnings), which
   * is also published as `vm.planWarning` / `vm.planUnplaceable` events. A plan that cannot place every VM is
   * still saved: the report is how it is known before a disaster.
   */
  async savePlan(options: VmSavePlanOptions): Promise<DrPlanReport> {
    const input = decode(VmSavePlanInput, options, 'vms.savePlan options')
    const plan: DrPlan = {
      id: input.id,
      source: input.source,
      destination: input.destination,
      protect: input.protect,
      backupEveryMs: input.backupEvery,
      replicateEveryMs: input.replicateEvery,
      placement: input.placement,
      retain: input.retain ?? 3,
      quiesceTimeoutMs: input.quiesceTimeout ?? 30_000,
      requireAppConsistent: input.requireAppConsistent ?? false,
      maxParallel: input.maxParallel ?? 8,
      locations: input.locations ?? null,
      pathMap: input.pathMap ?? null,
    }
    if (plan.source === plan.destination) throw new DrError('E_INVALID_INPUT', 'invalid vms.savePlan options: field "destination" must differ from "source"', { what: 'vms.savePlan options', violations: [{ path: 'destination', expected: 'a site other than the source', actual: JSON.stringify(plan.destination) }] })
    siteOf(this.#ctx, plan.source)
    siteOf(this.#ctx, plan.destination)
    await commit(this.#ctx, (state) => decideSavePlan(state, plan))
    this.#scheduler.arm(plan)
    this.#ctx.events.emit('vm.planSaved', 'info', { planId: plan.id })
    return this.validatePlan(plan.id)
  }

  /** Validates a plan against the VMs it protects and the destination hosts now, and reports the result. */
  async validatePlan(id: string): Promise<DrPlanReport> {
    const plan = planOf(this.#ctx, decode(VmPlanId, id, 'vms.validatePlan id'))
    const vms = await this.#protectedVms(plan)
    const source = siteOf(this.#ctx, plan.source).host
    const destination = siteOf(this.#ctx, plan.destination).host
    const hosts = await callAdapter(destination.kind, 'listHosts', () => destination.listHosts())
    const sourceHosts = new Set([...vms.map((vm) => vm.host), ...(await source.listHosts().catch(() => [])).map((h) => h.name)])
    const report = validatePlan(plan, vms.map((vm) => ({ vmId: vm.id, cpus: vm.cpus, memoryMb: vm.memoryMb, tags: vm.tags })), hosts, sourceHosts)
    for (const warning of report.warnings) this.#ctx.events.emit('vm.planWarning', 'warning', { planId: plan.id, ...warning })
    if (report.unplaced.length > 0) this.#ctx.events.emit('vm.planUnplaceable', 'error', { planId: plan.id, vms: report.unplaced })
    return report
  }

  /** Every stored plan, by id. */
  async listPlans(): Promise<readonly DrPlan[]> {
    return Object.values(this.#ctx.store.state.plans).sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  /** Deletes a plan and cancels its schedules (its backups and relationships stay). */
  async deletePlan(id: string): Promise<void> {
    const key = decode(VmPlanId, id, 'vms.deletePlan id')
    await commit(this.#ctx, (state) => decideDeletePlan(state, key))
    this.#scheduler.disarm(key)
  }

  /**
   * Backs up one protected VM now (an administrator's request; the schedule is not reset) and resolves with
   * the backup's metadata. Waits for a backup of the same VM that is running.
   */
  async backupNow(options: VmBackupNowOptions): Promise<BackupMetadata> {
    const input = decode(VmBackupNowInput, options, 'vms.backupNow options')
    const plan = planOf(this.#ctx, input.plan)
    const source = siteOf(this.#ctx, plan.source).host
    const vm = await callAdapter(source.kind, 'getVm', () => source.getVm(input.vm))
    if (vm === undefined || !isProtected(plan, vm)) throw new DrError('E_NOT_FOUND', `VM "${input.vm}" is not protected by plan "${plan.id}" on site ${plan.source}`, { vm: input.vm, plan: plan.id })
    return this.#backup(plan, vm.id, 'administrator')
  }

  /** The complete backups of a VM that a site's storage holds (read from its backup volume), oldest first. */
  async listBackups(options: { vm: string; site: string }): Promise<readonly FoundBackup[]> {
    const vm = decode(VmPlanId, options?.vm, 'vms.listBackups vm')
    const site = siteOf(this.#ctx, decode(VmPlanId, options.site, 'vms.listBackups site'))
    return readBackups(site.storage, backupVolumeName(vm))
  }

  /** Replicates the backups of every VM of a plan now (sets relationships up as needed); per VM the delta set cut or null. */
  async replicateNow(id: string): Promise<Readonly<Record<string, number | null>>> {
    const plan = planOf(this.#ctx, decode(VmPlanId, id, 'vms.replicateNow id'))
    return this.#replicate(plan)
  }

  /**
   * Fails the plan over to its destination site: breaks the backup mirrors, cycles the destination volumes, scans
   * them and restores every protected VM found from its newest complete backup on an alternate host of the plan.
   * An administrator may start it at any time; `dr-services` (a policy) only with `primaryConfirmedDown: true`
   * and when this coordinator cannot reach the source site's storage or hosts either.
   * Refused with `E_CONFLICT` while another failover of the plan runs. Re-issuing it after a partial outcome
   * restores the VMs that failed and leaves the restored ones alone. With `failedHosts` (a partial failure of the
   * source site) only the VMs whose last backup names one of those hosts fail over; the others are untouched.
   */
  async failover(options: VmFailoverOptions): Promise<VmFailoverReport> {
    const input = decode(VmFailoverInput, options, 'vms.failover options')
    const by = input.by ?? 'administrator'
    if (by === 'dr-services' && input.primaryConfirmedDown !== true) {
      throw new DrError('E_PRECONDITION', `a policy failover of plan "${input.plan}" needs the primary site confirmed down (primaryConfirmedDown: true)`, { plan: input.plan })
    }
    if (by === 'dr-services' && (await this.#sourceAnswers(planOf(this.#ctx, input.plan)))) {
      throw new DrError('E_PRECONDITION', `a policy failover of plan "${input.plan}" is refused: the source site's storage and hosts still answer`, { plan: input.plan })
    }
    return this.#runFailover(input.plan, by, false, null, input.failedHosts ?? null)
  }

  /**
   * Rehearses a failover without disturbing replication: restores renamed copies of the newest replicated backups
   * on the alternate hosts, attached only to the isolated `network`, checks they run, then removes them.
   */
  async testFailover(options: VmTestFailoverOptions): Promise<VmFailoverReport> {
    const input = decode(VmTestFailoverInput, options, 'vms.testFailover options')
    return this.#runFailover(input.plan, 'administrator', true, input.network, null)
  }

  /**
   * Returns the plan's failed-over VMs to their original hosts through reverse replication; per VM the outcome.
   * Re-issuing it after a crash resumes the interrupted failback.
   */
  async failback(options: VmFailbackOptions): Promise<readonly VmOutcome[]> {
    const input = decode(VmFailbackInput, options, 'vms.failback options')
    planOf(this.#ctx, input.plan)
    const interrupted = (await this.#ctx.workflows.listRunning()).find((id) => id.startsWith(`${VM_FAILBACK_WORKFLOW}.${input.plan}.`) && !id.includes('/'))
    if (interrupted !== undefined) return (await this.#ctx.workflows.resume(interrupted)) as unknown as VmOutcome[]
    const runId = this.#runId(`${VM_FAILBACK_WORKFLOW}.${input.plan}`)
    return (await this.#ctx.workflows.run(VM_FAILBACK_WORKFLOW, runId, { planId: input.plan, runId })) as unknown as VmOutcome[]
  }

  /**
   * Restores one VM from a backup held on `site` (pinned, or the newest complete one) to a host of that site:
   * `original-host` uses the host named in the backup metadata, `alternate-host` the given `host` (required).
   * A VM of that id registered on the site is replaced only with `overwrite: true`.
   */
  async restore(options: VmRestoreOptions): Promise<VmOutcome> {
    const input = decode(VmRestoreInput, options, 'vms.restore options')
    if (input.mode === 'alternate-host' && input.host === undefined) {
      throw new DrError('E_INVALID_INPUT', 'invalid vms.restore options: field "host" is required with mode "alternate-host"', { what: 'vms.restore options', violations: [{ path: 'host', expected: 'Name', actual: 'undefined' }] })
    }
    const { storage } = siteOf(this.#ctx, input.site)
    const volume = backupVolumeName(input.vm)
    const backups = await readBackups(storage, volume)
    const chosen = input.backup === undefined ? backups[backups.length - 1] : backups.find((b) => b.metadata.backupId === input.backup)
    if (chosen === undefined) throw new DrError('E_NOT_FOUND', `no backup ${input.backup ?? ''} of VM "${input.vm}" on site ${input.site}`.replace('  ', ' '), { vm: input.vm, site: input.site })
    const host = input.mode === 'alternate-host' ? (input.host as string) : chosen.metadata.hostName
    this.#ctx.events.emit('vm.alternateHostSelected', 'info', { vmId: input.vm, hostName: host, skipped: [], source: input.mode === 'alternate-host' ? 'caller' : 'metadata' })
    const runId = this.#runId(`${VM_RESTORE_WORKFLOW}.${input.vm}`)
    const child: VmRestoreWorkflowInput = {
      runId,
      planId: null,
      site: input.site,
      volume,
      slot: chosen.slot,
      snapshot: null,
      backupId: chosen.metadata.backupId,
      host,
      hostNameSource: input.mode === 'alternate-host' ? 'caller' : 'metadata',
      kind: 'single',
      prefix: '',
      network: null,
      pathMap: null,
      overwrite: input.overwrite === true,
      originalHost: chosen.metadata.hostName,
    }
    return (await this.#ctx.workflows.run(VM_RESTORE_WORKFLOW, runId, child as unknown as Json)) as unknown as VmOutcome
  }

  /** Resumes every VM workflow a crash interrupted (backups, restores, failovers, failbacks); resolves once all settled. */
  async recover(): Promise<void> {
    const running = await this.#ctx.workflows.listRunning()
    const mine = running.filter((id) => id.startsWith('vm.'))
    for (const id of mine) await this.#ctx.workflows.resume(id).catch(() => undefined)
  }

  /** Cancels the schedules. */
  close(): void {
    this.#scheduler.close()
  }

  async #runFailover(planId: string, by: 'administrator' | 'dr-services', test: boolean, network: string | null, failedHosts: readonly string[] | null): Promise<VmFailoverReport> {
    planOf(this.#ctx, planId)
    const current = this.#ctx.store.state.failovers[planId]
    if (current?.running === true) {
      const history = await this.#ctx.workflows.history(current.runId)
      if (history?.status === 'running' && !this.#busy.has(current.runId)) return this.#drive(current.runId, () => this.#ctx.workflows.resume(current.runId))
    }
    const runId = this.#runId(`${VM_FAILOVER_WORKFLOW}.${planId}`)
    await commit(this.#ctx, (state) => decideBeginFailover(state, planId, runId, by))
    this.#ctx.events.emit('vm.failoverInitiated', 'warning', { planId, runId, by, test })
    return this.#drive(runId, () => this.#ctx.workflows.run(VM_FAILOVER_WORKFLOW, runId, { planId, runId, by, test, network, failedHosts: failedHosts === null ? null : [...failedHosts] }))
  }

  async #drive(runId: string, run: () => Promise<Json>): Promise<VmFailoverReport> {
    const running = run()
    this.#busy.set(runId, running)
    try {
      return (await running) as unknown as VmFailoverReport
    } finally {
      this.#busy.delete(runId)
    }
  }

  async #backup(plan: DrPlan, vmId: string, trigger: BackupTrigger): Promise<BackupMetadata> {
    const key = `backup:${vmId}`
    const previous = this.#busy.get(key)
    if (previous !== undefined) await previous.catch(() => undefined)
    this.#ctx.events.emit('vm.backupRequested', 'info', { planId: plan.id, vmId, trigger })
    const running = (async () => {
      const input = await nextBackup(this.#ctx, plan, plan.source, vmId, trigger)
      return (await this.#ctx.workflows.run(VM_BACKUP_WORKFLOW, `${VM_BACKUP_WORKFLOW}.${input.backupId}.${this.#ctx.clock.now()}`, input as unknown as Json)) as unknown as BackupMetadata
    })()
    this.#busy.set(key, running)
    try {
      return await running
    } finally {
      if (this.#busy.get(key) === running) this.#busy.delete(key)
    }
  }

  /** True when both the storage and the hosts of the plan's source site answer this coordinator. */
  async #sourceAnswers(plan: DrPlan): Promise<boolean> {
    const source = siteOf(this.#ctx, plan.source)
    const answers = async (probe: () => Promise<unknown>): Promise<boolean> => probe().then(() => true, () => false)
    return (await answers(() => source.storage.listVolumes())) && (await answers(() => source.host.listHosts()))
  }

  async #protectedVms(plan: DrPlan): Promise<VmInfo[]> {
    const host = siteOf(this.#ctx, plan.source).host
    const vms = await callAdapter(host.kind, 'listVms', () => host.listVms())
    return vms.filter((vm) => isProtected(plan, vm))
  }

  /** The backup job: validates the plan (reporting what cannot be placed) and backs up every protected VM not failed over. */
  async #scheduledBackups(planId: string): Promise<void> {
    const plan = this.#ctx.store.state.plans[planId]
    if (plan === undefined) return
    await this.validatePlan(plan.id).catch(() => undefined)
    for (const vm of await this.#protectedVms(plan)) {
      if (this.#busy.has(`backup:${vm.id}`) || this.#ctx.store.state.placed[vm.id]?.site === plan.destination) continue
      await this.#backup(plan, vm.id, 'schedule').catch(() => undefined)
    }
  }

  async #scheduledReplication(planId: string): Promise<void> {
    const plan = this.#ctx.store.state.plans[planId]
    if (plan !== undefined && this.#ctx.store.state.failovers[planId]?.running !== true) await this.#replicate(plan)
  }

  async #replicate(plan: DrPlan): Promise<Record<string, number | null>> {
    const result: Record<string, number | null> = {}
    const vms = Object.entries(this.#ctx.store.state.backups)
      .filter(([, backups]) => backups.some((b) => b.site === plan.source))
      .map(([vmId]) => vmId)
      .filter((vmId) => (this.#ctx.store.state.mirrors[vmId]?.planId ?? plan.id) === plan.id)
      .sort()
    for (const vmId of vms) {
      const key = `replicate:${vmId}`
      if (this.#busy.has(key)) continue
      const running = replicateVm(this.#ctx, plan, vmId)
      this.#busy.set(key, running)
      result[vmId] = await running.finally(() => this.#busy.delete(key))
    }
    return result
  }

  #runId(prefix: string): string {
    return `${prefix}.${this.#ctx.clock.now()}.${this.#sequence++}`
  }
}

