import * as t from 'io-ts'
import { Duration, Name } from '../../kernel/codecs.js'

const PositiveDuration = t.refinement(Duration, (n) => n > 0, 'PositiveDuration')
const HOST_REF = /^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * A host named in a DR plan: a host of the site the rule places on (`hv-s1`), or a site-qualified host
 * (`east/hv-p1`). Host names are compared with their site: `west/hv-1` is not `east/hv-1`.
 *
 * @public
 */
export const HostRef = new t.Type<string, string, unknown>(
  'HostRef (a host name, or site/host)',
  (u): u is string => typeof u === 'string' && HOST_REF.test(u),
  (u, c) => (typeof u === 'string' && HOST_REF.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)
const Retain = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 1 && n <= 16, 'Retain (1..16)')
const Parallel = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 1 && n <= 256, 'Parallel (1..256)')

/**
 * Which VMs a DR plan protects: by id, by tag, or every VM registered on one of the named source hosts (any
 * combination; at least one list must be non-empty).
 *
 * @public
 */
export const VmProtectCodec = t.refinement(
  t.partial({ vms: t.array(Name), tags: t.array(t.string), hosts: t.array(Name) }),
  (p) => (p.vms?.length ?? 0) + (p.tags?.length ?? 0) + (p.hosts?.length ?? 0) > 0,
  'Protect (at least one of vms, tags, hosts)',
)

/**
 * The alternate-host rule of a DR plan: `explicit` names a destination host per VM id or per tag (key
 * `tag:<tag>`); `capacity` picks, from a list, the available host with the most free memory (then CPU) that
 * fits the VM, keeping VMs of one anti-affinity group on different hosts. Hosts are {@link HostRef}s.
 *
 * @public
 */
export const VmPlacementCodec = t.union([
  t.type({ rule: t.literal('explicit'), hosts: t.record(t.string, HostRef) }),
  t.intersection([t.type({ rule: t.literal('capacity'), hosts: t.array(HostRef) }), t.partial({ antiAffinity: t.array(t.array(Name)) })]),
])

/**
 * One placement rule.
 *
 * @public
 */
export type VmPlacement = t.TypeOf<typeof VmPlacementCodec>

/**
 * A tertiary site of a plan (note 003 ¶0046: secondary storage objects replicated again to tertiary ones): the
 * destination's replicas of the backups are cascaded to it (vol-s → vol-t), and its hosts take the VMs by their own
 * alternate-host rule. A failover may restore the VMs there (`failover({ site })`), e.g. when the primary and the
 * secondary site are both lost.
 *
 * @public
 */
export const TertiarySiteCodec = t.type({ site: Name, placement: VmPlacementCodec }, 'TertiarySite')

/**
 * One tertiary site of a plan.
 *
 * @public
 */
export type TertiarySite = t.TypeOf<typeof TertiarySiteCodec>

/**
 * A DR plan as it is stored (all defaults applied).
 *
 * @public
 */
export const DrPlanCodec = t.intersection(
  [
    t.type({
      id: Name,
      source: Name,
      destination: Name,
      protect: VmProtectCodec,
      backupEveryMs: t.number,
      replicateEveryMs: t.number,
      placement: VmPlacementCodec,
      retain: t.number,
      quiesceTimeoutMs: t.number,
      requireAppConsistent: t.boolean,
      maxParallel: t.number,
      locations: t.union([t.null, t.type({ source: t.string, destination: t.string })]),
      pathMap: t.union([t.null, t.record(t.string, t.string)]),
    }),
    t.partial({ tertiary: t.array(TertiarySiteCodec), derivedFromHost: Name }),
  ],
  'DrPlan',
)

/**
 * One stored DR plan (`tertiary`: its tertiary sites; `derivedFromHost`: the host whose agent's policies gave
 * its intervals, when it was derived with `vms.derivePlan`).
 *
 * @public
 */
export type DrPlan = t.TypeOf<typeof DrPlanCodec>

const PlanOptionals = t.partial({
  retain: Retain,
  quiesceTimeout: PositiveDuration,
  requireAppConsistent: t.boolean,
  maxParallel: Parallel,
  locations: t.type({ source: t.string, destination: t.string }),
  pathMap: t.record(t.string, t.string),
  tertiary: t.array(TertiarySiteCodec),
})

/**
 * Options of `vms.savePlan`: the plan id, the source and destination sites, what it protects, how often VMs are
 * backed up and backups replicated (durations such as `"1h"`), the alternate-host rule, and optionally how many
 * backups to keep per VM (default 3), the quiesce timeout (default 30 s), whether a backup that cannot be made
 * application-consistent fails instead of being kept crash-consistent (default false), how many VMs a failover
 * restores at once (default 8), where the two sites are (a warning is reported when they are the same place),
 * how disk paths translate on the destination hosts (`pathMap`: path prefix on the source → prefix on the
 * destination; when given, a disk path no prefix matches fails that VM's restore before anything is created) and
 * tertiary sites (`tertiary`: each is fed by a cascade from the destination and has its own placement rule).
 *
 * @public
 */
export const VmSavePlanInput = t.intersection(
  [
    t.type({
      id: Name,
      source: Name,
      destination: Name,
      protect: VmProtectCodec,
      backupEvery: PositiveDuration,
      replicateEvery: PositiveDuration,
      placement: VmPlacementCodec,
    }),
    PlanOptionals,
  ],
  'VmSavePlanOptions',
)

/**
 * What `vms.savePlan` takes.
 *
 * @public
 */
export type VmSavePlanOptions = t.OutputOf<typeof VmSavePlanInput>

/**
 * Options of `vms.derivePlan`: a plan whose backup and replication intervals are those the data protection agent
 * of `fromHost` (a host of the source site) reports through the site's `HostPort.hostPolicies` (note 003 ¶0027).
 * `protect` defaults to every VM on that host; the other options are those of `vms.savePlan`.
 *
 * @public
 */
export const VmDerivePlanInput = t.intersection(
  [
    t.type({ id: Name, source: Name, destination: Name, fromHost: Name, placement: VmPlacementCodec }),
    t.partial({ protect: VmProtectCodec }),
    PlanOptionals,
  ],
  'VmDerivePlanOptions',
)

/**
 * What `vms.derivePlan` takes.
 *
 * @public
 */
export type VmDerivePlanOptions = t.OutputOf<typeof VmDerivePlanInput>

/**
 * Options of `vms.backupNow`: the plan and the VM to back up at once (an administrator's request).
 *
 * @public
 */
export const VmBackupNowInput = t.type({ plan: Name, vm: Name }, 'VmBackupNowOptions')

/**
 * What `vms.backupNow` takes.
 *
 * @public
 */
export type VmBackupNowOptions = t.TypeOf<typeof VmBackupNowInput>

/**
 * Options of `vms.failover`: the plan, who started it (`administrator` by default, or `dr-services` for a
 * policy decision, which needs `primaryConfirmedDown: true`: drkit never fails over from the primary site's own
 * view alone), optionally `failedHosts`: when only some source hosts failed, only the VMs whose last backup
 * names one of them fail over (their mirrors alone are broken); the others stay where they run; and `site`: the
 * site to fail over to (default the plan's destination; or one of its tertiary sites, e.g. when the primary and the
 * secondary site are both lost).
 *
 * @public
 */
export const VmFailoverInput = t.intersection(
  [
    t.type({ plan: Name }),
    t.partial({ by: t.union([t.literal('administrator'), t.literal('dr-services')]), primaryConfirmedDown: t.boolean, failedHosts: t.array(Name), site: Name }),
  ],
  'VmFailoverOptions',
)

/**
 * What `vms.failover` takes.
 *
 * @public
 */
export type VmFailoverOptions = t.TypeOf<typeof VmFailoverInput>

/**
 * Options of `vms.testFailover`: the plan, the isolated network name the test VMs are attached to, and
 * optionally the site to rehearse on (default the plan's destination; or one of its tertiary sites).
 *
 * @public
 */
export const VmTestFailoverInput = t.intersection([t.type({ plan: Name, network: Name }), t.partial({ site: Name })], 'VmTestFailoverOptions')

/**
 * What `vms.testFailover` takes.
 *
 * @public
 */
export type VmTestFailoverOptions = t.TypeOf<typeof VmTestFailoverInput>

/**
 * Options of `vms.restore`: the VM, the site whose backups to use, optionally a pinned backup id (default the
 * newest complete one), the mode (`original-host`: the host named in the backup metadata; `alternate-host`:
 * `host`, required) and `overwrite: true` to replace a VM of that id registered on the site.
 *
 * @public
 */
export const VmRestoreInput = t.intersection(
  [
    t.type({ vm: Name, site: Name, mode: t.union([t.literal('original-host'), t.literal('alternate-host')]) }),
    t.partial({ backup: Name, host: Name, overwrite: t.boolean }),
  ],
  'VmRestoreOptions',
)

/**
 * What `vms.restore` takes.
 *
 * @public
 */
export type VmRestoreOptions = t.TypeOf<typeof VmRestoreInput>

/**
 * Options of `vms.failback`: the plan whose failed-over VMs return to their original hosts, and what the reverse
 * resync may do with data the source wrote after the failover (backups it took that were never replicated):
 * `acknowledgeDataLoss: true` lets it discard them, `safetySnapshot: true` keeps them in a held snapshot. Without
 * either, a VM whose source has such data is not failed back (it keeps running where it was failed over to).
 *
 * @public
 */
export const VmFailbackInput = t.intersection(
  [t.type({ plan: Name }), t.partial({ acknowledgeDataLoss: t.boolean, safetySnapshot: t.boolean })],
  'VmFailbackOptions',
)

/**
 * What `vms.failback` takes.
 *
 * @public
 */
export type VmFailbackOptions = t.TypeOf<typeof VmFailbackInput>

/**
 * A plan id argument.
 *
 * @public
 */
export const VmPlanId = Name
