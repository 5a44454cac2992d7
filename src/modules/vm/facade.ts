import { DrError, callAdapter } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { BackupMetadataCodec, backupVolumeName, type BackupMetadata } from './backup-layout.js'
import { readBackups, type FoundBackup } from './backup-volume.js'
import { VM_BACKUP_WORKFLOW, VmBackupWorkflowInput, runBackup } from './backup.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideDeletePlan, decideSavePlan } from './decide.js'
import { hostPoliciesOf } from './derive-plan.js'
import type { BackupTrigger } from './events.js'
import { VM_FAILBACK_VM_WORKFLOW, VmFailbackVmWorkflowInput, runFailbackVm } from './failback-vm.js'
import { VM_FAILBACK_WORKFLOW, VmFailbackWorkflowInput, runFailback } from './failback.js'
import { VM_FAILOVER_WORKFLOW, VmFailoverWorkflowInput, runFailover } from './failover.js'
import { FailoverRunner } from './failover-runner.js'
import {
  VmBackupNowInput,
  VmDerivePlanInput,
  VmFailbackInput,
  VmFailoverInput,
  VmPlanId,
  VmRestoreInput,
  VmSavePlanInput,
  VmTestFailoverInput,
  type VmBackupNowOptions,
  type VmDerivePlanOptions,
  type VmFailbackOptions,
  type VmFailoverOptions,
  type DrPlan,
  type VmRestoreOptions,
  type VmSavePlanOptions,
  type VmTestFailoverOptions,
} from './inputs.js'
import { resumeWith, runWith } from './journaled-step.js'
import { nextBackup } from './next-backup.js'
import { VmOutcomeCodec, type VmFailoverReport, type VmOutcome } from './outcomes.js'
import { isProtected, type DrPlanReport } from './placement.js'
import { protectedVms, reportPlan } from './plan-report.js'
import { cascadeVm } from './cascade.js'
import { replicateVm } from './replication.js'
import { VM_RESTORE_WORKFLOW, VmRestoreWorkflowInput, runRestore } from './restore.js'
import { PlanScheduler } from './scheduler.js'
import { prepareRestore } from './single-restore.js'
import { mirrorKey, sitesOf } from './sites.js'
import { siteAnswers } from './source-probe.js'
import * as t from 'io-ts'

/**
 * The VM facade (`dr.vms`): DR plans (validated, with the placement a failover would make reported before any
 * disaster; saved as given or derived from a host agent's policies), application-consistent backups with their
 * metadata stored with them, replication of the backups through the mirror module on the plan's schedule (to the
 * destination, and on to any tertiary sites), failover to alternate hosts, test failover, failback and the restore of one
 * VM from any backup to any host. Every method validates its input first and rejects with a `DrError`; a rejected
 * call changes nothing. Long operations are durable workflows; {@link VmFacade.recover} resumes the ones a crash
 * interrupted.
 *
 * @public
 */
export class VmFacade {
  readonly #ctx: VmContext
  readonly #scheduler: PlanScheduler
  readonly #failovers: FailoverRunner
  readonly #busy = new Map<string, Promise<unknown>>()
  #sequence = 0

  /** @internal Built by `openVmModule`; reach it as `dr.vms`. */
  constructor(ctx: VmContext) {
    this.#ctx = ctx
    ctx.workflows.register(VM_BACKUP_WORKFLOW, { input: VmBackupWorkflowInput, run: (wf, input) => runBackup(ctx, wf, input) })
    ctx.workflows.register(VM_RESTORE_WORKFLOW, { input: VmRestoreWorkflowInput, run: (wf, input) => runRestore(ctx, wf, input) })
    ctx.workflows.register(VM_FAILOVER_WORKFLOW, { input: VmFailoverWorkflowInput, run: (wf, input) => runFailover(ctx, wf, input) })
    ctx.workflows.register(VM_FAILBACK_WORKFLOW, { input: VmFailbackWorkflowInput, run: (wf, input) => runFailback(ctx, wf, input) })
    ctx.workflows.register(VM_FAILBACK_VM_WORKFLOW, { input: VmFailbackVmWorkflowInput, run: (wf, input) => runFailbackVm(ctx, wf, input) })
    this.#failovers = new FailoverRunner(ctx, (prefix) => this.#runId(prefix))
    this.#scheduler = new PlanScheduler(ctx.clock, { backup: (id) => this.#scheduledBackups(id), replicate: (id) => this.#scheduledReplication(id) })
    for (const plan of Object.values(ctx.store.state.plans)) this.#scheduler.arm(plan)
  }

  /**
   * Creates or replaces a DR plan, arms its backup and replication schedules and resolves with its validation
   * report (placement of every protected VM on the destination and each tertiary site now, VMs that cannot be
   * placed or whose disk paths the path map does not translate, warnings), which is also published as
   * `vm.planWarning` / `vm.planUnplaceable` events. A plan that cannot place every VM is still saved: the report is
   * how it is known before a disaster.
   */
  async savePlan(options: VmSavePlanOptions): Promise<DrPlanReport> {
    const input = decode(VmSavePlanInput, options, 'vms.savePlan options')
    return this.#save(input, input.backupEvery, input.replicateEvery, undefined)
  }

  /**
   * Creates or replaces a DR plan whose backup and replication intervals are those the data protection agent of
   * `fromHost` on the source site reports (`HostPort.hostPolicies`; note 003 ¶0027); by default it protects every
   * VM on that host. Resolves with the validation report, as `savePlan` does; the stored plan names the host
   * (`derivedFromHost`) and `vm.planSaved` says `derivedFromHostApi: true`.
   */
  async derivePlan(options: VmDerivePlanOptions): Promise<DrPlanReport> {
    const input = decode(VmDerivePlanInput, options, 'vms.derivePlan options')
    siteOf(this.#ctx, input.source)
    const policies = await hostPoliciesOf(this.#ctx, input.source, input.fromHost)
    return this.#save({ ...input, protect: input.protect ?? { hosts: [input.fromHost] } }, policies.backupEveryMs, policies.replicateEveryMs, input.fromHost)
  }

  /** Validates a plan against the VMs it protects and the hosts of the sites it replicates to now, and reports the result. */
  async validatePlan(id: string): Promise<DrPlanReport> {
    return reportPlan(this.#ctx, planOf(this.#ctx, decode(VmPlanId, id, 'vms.validatePlan id')))
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

  /**
   * Replicates the backups of every VM of a plan now to its destination, and cascades what the destination holds
   * on to its tertiary sites (sets relationships up as needed); per VM the delta set cut towards the destination
   * (key: the VM id) and towards each tertiary site (key `<vmId>@<site>`), or null. `E_CONFLICT` while the plan
   * fails over.
   */
  async replicateNow(id: string): Promise<Readonly<Record<string, number | null>>> {
    const plan = planOf(this.#ctx, decode(VmPlanId, id, 'vms.replicateNow id'))
    if (this.#ctx.store.state.failovers[plan.id]?.running === true) throw new DrError('E_CONFLICT', `DR plan "${plan.id}" is failing over; its mirrors are not replicated now`, { plan: plan.id })
    return this.#replicate(plan)
  }

  /**
   * Fails the plan over to its destination site (or to `site`, one of its tertiary sites): fences the source VMs
   * when the source answers, breaks the backup mirrors, cycles the destination volumes, scans them and restores
   * every protected VM found from its newest complete backup on an alternate host of the plan. An administrator
   * may start it at any time; `dr-services` (a policy) only with `primaryConfirmedDown: true` and when this
   * coordinator cannot reach the source site's storage or hosts either (each probe bounded in time).
   * Refused with `E_CONFLICT` while another failover of the plan runs. Re-issuing it after a partial outcome
   * restores the VMs that failed and leaves the restored ones alone; after a crash it resumes the interrupted run.
   * With `failedHosts` (a partial failure of the source site) only the VMs whose last backup names one of those
   * hosts fail over; the others are untouched.
   */
  async failover(options: VmFailoverOptions): Promise<VmFailoverReport> {
    const input = decode(VmFailoverInput, options, 'vms.failover options')
    const plan = planOf(this.#ctx, input.plan)
    const by = input.by ?? 'administrator'
    if (by === 'dr-services' && input.primaryConfirmedDown !== true) {
      throw new DrError('E_PRECONDITION', `a policy failover of plan "${input.plan}" needs the primary site confirmed down (primaryConfirmedDown: true)`, { plan: input.plan })
    }
    if (by === 'dr-services' && !this.#failovers.busy(plan.id) && (await siteAnswers(this.#ctx, plan.source))) {
      throw new DrError('E_PRECONDITION', `a policy failover of plan "${input.plan}" is refused: the source site's storage and hosts still answer`, { plan: input.plan })
    }
    return this.#failovers.request(plan.id, { by, test: false, network: null, failedHosts: input.failedHosts ?? null, site: input.site ?? plan.destination })
  }

  /**
   * Rehearses a failover without disturbing replication: restores renamed copies of the newest replicated backups
   * (held while they are read) on the alternate hosts of the destination (or `site`), attached only to the isolated
   * `network`, checks they run, then removes them.
   */
  async testFailover(options: VmTestFailoverOptions): Promise<VmFailoverReport> {
    const input = decode(VmTestFailoverInput, options, 'vms.testFailover options')
    const plan = planOf(this.#ctx, input.plan)
    return this.#failovers.request(plan.id, { by: 'administrator', test: true, network: input.network, failedHosts: null, site: input.site ?? plan.destination })
  }

  /**
   * Returns the plan's failed-over VMs to their original hosts through reverse replication, each VM kept running
   * until its final backup; per VM the outcome. Refused with `E_PRECONDITION` while the source does not answer.
   * Re-issuing it after a crash resumes the interrupted failback.
   */
  async failback(options: VmFailbackOptions): Promise<readonly VmOutcome[]> {
    const input = decode(VmFailbackInput, options, 'vms.failback options')
    planOf(this.#ctx, input.plan)
    const outcomes = t.array(VmOutcomeCodec)
    const interrupted = (await this.#ctx.workflows.listRunning()).find((id) => id.startsWith(`${VM_FAILBACK_WORKFLOW}.${input.plan}.`) && !id.includes('/'))
    if (interrupted !== undefined) return resumeWith(this.#ctx.workflows, outcomes, interrupted)
    const runId = this.#runId(`${VM_FAILBACK_WORKFLOW}.${input.plan}`)
    const run = { planId: input.plan, runId, ...(input.acknowledgeDataLoss === undefined ? {} : { acknowledgeDataLoss: input.acknowledgeDataLoss }), ...(input.safetySnapshot === undefined ? {} : { safetySnapshot: input.safetySnapshot }) }
    return runWith(this.#ctx.workflows, outcomes, VM_FAILBACK_WORKFLOW, runId, run, VmFailbackWorkflowInput)
  }

  /**
   * Restores one VM from a backup held on `site` (pinned, or the newest complete one) to a host of that site:
   * `original-host` uses the host named in the backup metadata, `alternate-host` the given `host` (required). The
   * host must exist, be online and have room, and a VM of that id registered on the site is replaced only with
   * `overwrite: true` — all checked before anything changes. On a live mirror destination it reads the newest
   * replicated snapshot (held meanwhile), elsewhere a snapshot it takes of the backup volume; a failure after the
   * VM was evicted puts it back.
   */
  async restore(options: VmRestoreOptions): Promise<VmOutcome> {
    const input = decode(VmRestoreInput, options, 'vms.restore options')
    if (input.mode === 'alternate-host' && input.host === undefined) {
      throw new DrError('E_INVALID_INPUT', 'invalid vms.restore options: field "host" is required with mode "alternate-host"', { what: 'vms.restore options', violations: [{ path: 'host', expected: 'Name', actual: 'undefined' }] })
    }
    const runId = this.#runId(`${VM_RESTORE_WORKFLOW}.${input.vm}`)
    const child = await prepareRestore(this.#ctx, input, runId)
    this.#ctx.events.emit('vm.alternateHostSelected', 'info', { vmId: input.vm, hostName: child.host, skipped: [], source: input.mode === 'alternate-host' ? 'caller' : 'metadata' })
    return runWith(this.#ctx.workflows, VmOutcomeCodec, VM_RESTORE_WORKFLOW, runId, child, VmRestoreWorkflowInput)
  }

  /**
   * Resumes every VM workflow a crash interrupted (backups, restores, failovers — also one whose workflow never
   * started —, failbacks); resolves once all settled.
   */
  async recover(): Promise<void> {
    await this.#failovers.recover()
    const running = await this.#ctx.workflows.listRunning()
    for (const id of running.filter((each) => each.startsWith('vm.'))) await this.#ctx.workflows.resume(id).catch(() => undefined)
  }

  /** Cancels the schedules. */
  close(): void {
    this.#scheduler.close()
  }

  async #save(
    input: Omit<VmSavePlanOptions, 'backupEvery' | 'replicateEvery' | 'retain' | 'quiesceTimeout' | 'maxParallel'> & { retain?: number; quiesceTimeout?: number; maxParallel?: number },
    backupEveryMs: number,
    replicateEveryMs: number,
    derivedFromHost: string | undefined,
  ): Promise<DrPlanReport> {
    const plan: DrPlan = {
      id: input.id,
      source: input.source,
      destination: input.destination,
      protect: input.protect,
      backupEveryMs,
      replicateEveryMs,
      placement: input.placement,
      retain: input.retain ?? 3,
      quiesceTimeoutMs: input.quiesceTimeout ?? 30_000,
      requireAppConsistent: input.requireAppConsistent ?? false,
      maxParallel: input.maxParallel ?? 8,
      locations: input.locations ?? null,
      pathMap: input.pathMap ?? null,
      ...(input.tertiary === undefined || input.tertiary.length === 0 ? {} : { tertiary: input.tertiary }),
      ...(derivedFromHost === undefined ? {} : { derivedFromHost }),
    }
    const sites = sitesOf(plan)
    const clash = [plan.source, ...sites].find((site, index, all) => all.indexOf(site) !== index)
    if (clash !== undefined) {
      throw new DrError('E_INVALID_INPUT', `invalid vms.savePlan options: the source, the destination and the tertiary sites must all differ ("${clash}" repeats)`, {
        what: 'vms.savePlan options',
        violations: [{ path: clash === plan.destination ? 'destination' : 'tertiary', expected: 'a site other than the source, the destination and the other tertiary sites', actual: JSON.stringify(clash) }],
      })
    }
    for (const site of [plan.source, ...sites]) siteOf(this.#ctx, site)
    await commit(this.#ctx, (state) => decideSavePlan(state, plan))
    this.#scheduler.arm(plan)
    this.#ctx.events.emit('vm.planSaved', 'info', { planId: plan.id, derivedFromHostApi: derivedFromHost !== undefined })
    return reportPlan(this.#ctx, plan)
  }

  async #backup(plan: DrPlan, vmId: string, trigger: BackupTrigger): Promise<BackupMetadata> {
    const key = `backup:${vmId}`
    const previous = this.#busy.get(key)
    if (previous !== undefined) await previous.catch(() => undefined)
    this.#ctx.events.emit('vm.backupRequested', 'info', { planId: plan.id, vmId, trigger })
    const running = (async () => {
      const input = await nextBackup(this.#ctx, plan, plan.source, vmId, trigger)
      return runWith(this.#ctx.workflows, BackupMetadataCodec, VM_BACKUP_WORKFLOW, `${VM_BACKUP_WORKFLOW}.${input.backupId}.${this.#ctx.clock.now()}`, input, VmBackupWorkflowInput)
    })()
    this.#busy.set(key, running)
    try {
      return await running
    } finally {
      if (this.#busy.get(key) === running) this.#busy.delete(key)
    }
  }

  /** The backup job: validates the plan (reporting what cannot be placed) and backs up every protected VM not failed over. */
  async #scheduledBackups(planId: string): Promise<void> {
    const plan = this.#ctx.store.state.plans[planId]
    if (plan === undefined) return
    await this.validatePlan(plan.id).catch(() => undefined)
    for (const vm of await protectedVms(this.#ctx, plan)) {
      const placed = this.#ctx.store.state.placed[vm.id]
      if (this.#busy.has(`backup:${vm.id}`) || (placed !== undefined && placed.site !== plan.source)) continue
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
      .filter(([, backups]) => backups.some((b) => b.site === plan.source && (b.planId ?? plan.id) === plan.id))
      .map(([vmId]) => vmId)
      .filter((vmId) => (this.#ctx.store.state.mirrors[vmId]?.planId ?? plan.id) === plan.id)
      .sort()
    for (const vmId of vms) {
      for (const site of sitesOf(plan)) {
        const key = mirrorKey(plan, vmId, site)
        const busy = `replicate:${key}`
        if (this.#busy.has(busy)) continue
        const hop = { from: { site: plan.source, volume: backupVolumeName(vmId) }, to: site }
        const running = site === plan.destination ? replicateVm(this.#ctx, plan, vmId, hop) : cascadeVm(this.#ctx, plan, vmId, site)
        this.#busy.set(busy, running)
        result[key] = await running.finally(() => this.#busy.delete(busy))
      }
    }
    return result
  }

  #runId(prefix: string): string {
    return `${prefix}.${this.#ctx.clock.now()}.${this.#sequence++}`
  }
}
