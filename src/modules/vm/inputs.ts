import * as t from 'io-ts'
import { Duration, Name } from '../../kernel/codecs.js'

const PositiveDuration = t.refinement(Duration, (n) => n > 0, 'PositiveDuration')
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
 * fits the VM, keeping VMs of one anti-affinity group on different hosts.
 *
 * @public
 */
export const VmPlacementCodec = t.union([
  t.type({ rule: t.literal('explicit'), hosts: t.record(t.string, Name) }),
  t.intersection([t.type({ rule: t.literal('capacity'), hosts: t.array(Name) }), t.partial({ antiAffinity: t.array(t.array(Name)) })]),
])

/**
 * A DR plan as it is stored (all defaults applied).
 *
 * @public
 */
export const DrPlanCodec = t.type(
  {
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
  },
  'DrPlan',
)

/**
 * One stored DR plan.
 *
 * @public
 */
export type DrPlan = t.TypeOf<typeof DrPlanCodec>

/**
 * Options of `vms.savePlan`: the plan id, the source and destination sites, what it protects, how often VMs are
 * backed up and backups replicated (durations such as `"1h"`), the alternate-host rule, and optionally how many
 * backups to keep per VM (default 3), the quiesce timeout (default 30 s), whether a backup that cannot be made
 * application-consistent fails instead of being kept crash-consistent (default false), how many VMs a failover
 * restores at once (default 8), where the two sites are (a warning is reported when they are the same place) and
 * how disk paths translate on the destination hosts (`pathMap`: path prefix on the source → prefix on the
 * destination; when given, a disk path no prefix matches fails that VM's restore before anything is created).
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
    t.partial({
      retain: Retain,
      quiesceTimeout: PositiveDuration,
      requireAppConsistent: t.boolean,
      maxParallel: Parallel,
      locations: t.type({ source: t.string, destination: t.string }),
      pathMap: t.record(t.string, t.string),
    }),
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
 * view alone), and optionally `failedHosts`: when only some source hosts failed, only the VMs whose last backup
 * names one of them fail over (their mirrors alone are broken); the others stay where they run.
 *
 * @public
 */
export const VmFailoverInput = t.intersection(
  [
    t.type({ plan: Name }),
    t.partial({ by: t.union([t.literal('administrator'), t.literal('dr-services')]), primaryConfirmedDown: t.boolean, failedHosts: t.array(Name) }),
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
 * Options of `vms.testFailover`: the plan and the isolated network name the test VMs are attached to.
 *
 * @public
 */
export const VmTestFailoverInput = t.type({ plan: Name, network: t.string }, 'VmTestFailoverOptions')

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
    t.partial({ backup: t.string, host: Name, overwrite: t.boolean }),
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
 * Options of `vms.failback`: the plan whose failed-over VMs return to their original hosts.
 *
 * @public
 */
export const VmFailbackInput = t.type({ plan: Name }, 'VmFailbackOptions')

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
