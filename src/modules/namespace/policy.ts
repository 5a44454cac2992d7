import * as t from 'io-ts'
import { Duration, Name } from '../../kernel/codecs.js'

const Access = t.union([t.literal('read'), t.literal('write')])
const AccessList = t.refinement(
  t.array(Access),
  (list) => list.length > 0 && new Set(list).size === list.length,
  'AccessList (a non-empty list of distinct "read" / "write")',
)
const Script = t.refinement(t.string, (s) => s.trim().length > 0 && s.length <= 4096, 'Script (a non-empty command, at most 4096 characters)')
const HookTimeout = t.refinement(Duration, (ms) => ms > 0 && ms <= 86_400_000, 'HookTimeout (more than 0, at most 1d)')
const ProbeInterval = t.refinement(Duration, (ms) => ms >= 10 && ms <= 86_400_000, 'ProbeInterval (10ms..1d)')
const ProbeTimeout = t.refinement(Duration, (ms) => ms > 0 && ms <= 3_600_000, 'ProbeTimeout (more than 0, at most 1h)')
const Failures = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 1 && n <= 1000, 'Failures (1..1000)')
const MirrorMode = t.union([t.literal('sync'), t.literal('default'), t.literal('now')])
const PreHookFailure = t.union([t.literal('abort'), t.literal('continue')])

/**
 * A failover hook script as a policy names it: the command, its arguments, how long it may run (default 60 s)
 * and the site whose host runs it (default: the site the link fails over to).
 *
 * @public
 */
export const HookInput = t.intersection(
  [t.type({ script: Script }), t.partial({ args: t.array(t.string), timeout: HookTimeout, site: Name })],
  'FailoverHook',
)

/**
 * The settings of a data-protection policy that may be edited after it is created. Durations may be strings
 * such as `"30s"`.
 *
 * @public
 */
export const PolicySettingsInput = t.partial(
  {
    automaticFailover: t.boolean,
    breakMirror: t.boolean,
    mirrorFailoverMode: MirrorMode,
    failuresBeforeInaccessible: Failures,
    probeTimeout: ProbeTimeout,
    inaccessibleAfter: t.union([ProbeTimeout, t.null]),
    probeInterval: ProbeInterval,
    access: AccessList,
    preFailoverHook: t.union([HookInput, t.null]),
    postFailoverHook: t.union([HookInput, t.null]),
    onPreHookFailure: PreHookFailure,
  },
  'PolicySettings',
)

/**
 * Options of `namespace.createPolicy`: a unique name, whether failover is automatic and whether it breaks
 * (fails over) the mirror, plus optional settings (see {@link PolicySettingsInput}).
 *
 * @public
 */
export const CreatePolicyInput = t.intersection(
  [t.type({ name: Name, automaticFailover: t.boolean, breakMirror: t.boolean }), PolicySettingsInput],
  'CreatePolicyOptions',
)

/**
 * Options of `namespace.updatePolicy`: the policy's name and the settings to change.
 *
 * @public
 */
export const UpdatePolicyInput = t.intersection([t.type({ name: Name }), PolicySettingsInput], 'UpdatePolicyOptions')

/**
 * What `namespace.createPolicy` takes.
 *
 * @public
 */
export type CreatePolicyOptions = t.OutputOf<typeof CreatePolicyInput>

/**
 * What `namespace.updatePolicy` takes.
 *
 * @public
 */
export type UpdatePolicyOptions = t.OutputOf<typeof UpdatePolicyInput>

/**
 * A failover hook as stored in a policy.
 *
 * @public
 */
export const HookRecordCodec = t.type(
  { script: t.string, args: t.array(t.string), timeoutMs: t.number, site: t.union([t.string, t.null]) },
  'HookRecord',
)

/**
 * A stored failover hook.
 *
 * @public
 */
export type HookRecord = t.TypeOf<typeof HookRecordCodec>

/**
 * A data-protection policy as stored: identity, the failover switches, the monitoring thresholds (consecutive
 * failed probes, per-probe timeout, optional overall "time out timer", probe interval, the rights a probe
 * opens the share with), and the hooks.
 *
 * @public
 */
export const PolicyRecordCodec = t.type(
  {
    id: t.string,
    name: t.string,
    automaticFailover: t.boolean,
    breakMirror: t.boolean,
    mirrorFailoverMode: MirrorMode,
    failuresBeforeInaccessible: t.number,
    probeTimeoutMs: t.number,
    inaccessibleAfterMs: t.union([t.number, t.null]),
    probeIntervalMs: t.number,
    access: t.array(Access),
    preFailoverHook: t.union([HookRecordCodec, t.null]),
    postFailoverHook: t.union([HookRecordCodec, t.null]),
    onPreHookFailure: PreHookFailure,
    createdAt: t.number,
    updatedAt: t.number,
  },
  'PolicyRecord',
)

/**
 * A stored data-protection policy.
 *
 * @public
 */
export type PolicyRecord = t.TypeOf<typeof PolicyRecordCodec>

/**
 * Defaults of a policy's optional settings: 3 consecutive failed probes, 5 s per probe, no overall timer, a
 * probe every 30 s opening the share for reading, abort the failover when the pre-hook fails, mirror failover
 * mode `default`, 60 s per hook.
 *
 * @public
 */
export const POLICY_DEFAULTS = {
  failuresBeforeInaccessible: 3,
  probeTimeoutMs: 5_000,
  probeIntervalMs: 30_000,
  access: ['read'] as const,
  onPreHookFailure: 'abort',
  mirrorFailoverMode: 'default',
  hookTimeoutMs: 60_000,
} as const

function hookRecord(hook: t.TypeOf<typeof HookInput> | null): HookRecord | null {
  if (hook === null) return null
  return { script: hook.script, args: hook.args ?? [], timeoutMs: hook.timeout ?? POLICY_DEFAULTS.hookTimeoutMs, site: hook.site ?? null }
}

/**
 * Applies decoded settings to a policy (or to the defaults, for a new one) and returns the stored form.
 *
 * @public
 */
export function applyPolicySettings(
  base: Omit<PolicyRecord, 'updatedAt'>,
  settings: t.TypeOf<typeof PolicySettingsInput>,
  at: number,
): PolicyRecord {
  return {
    ...base,
    automaticFailover: settings.automaticFailover ?? base.automaticFailover,
    breakMirror: settings.breakMirror ?? base.breakMirror,
    mirrorFailoverMode: settings.mirrorFailoverMode ?? base.mirrorFailoverMode,
    failuresBeforeInaccessible: settings.failuresBeforeInaccessible ?? base.failuresBeforeInaccessible,
    probeTimeoutMs: settings.probeTimeout ?? base.probeTimeoutMs,
    inaccessibleAfterMs: settings.inaccessibleAfter === undefined ? base.inaccessibleAfterMs : settings.inaccessibleAfter,
    probeIntervalMs: settings.probeInterval ?? base.probeIntervalMs,
    access: settings.access ?? base.access,
    preFailoverHook: settings.preFailoverHook === undefined ? base.preFailoverHook : hookRecord(settings.preFailoverHook),
    postFailoverHook: settings.postFailoverHook === undefined ? base.postFailoverHook : hookRecord(settings.postFailoverHook),
    onPreHookFailure: settings.onPreHookFailure ?? base.onPreHookFailure,
    updatedAt: at,
  }
}

/**
 * A new policy with every optional setting at its default, before the caller's settings are applied.
 *
 * @public
 */
export function basePolicy(id: string, name: string, automaticFailover: boolean, breakMirror: boolean, at: number): Omit<PolicyRecord, 'updatedAt'> {
  return {
    id,
    name,
    automaticFailover,
    breakMirror,
    mirrorFailoverMode: POLICY_DEFAULTS.mirrorFailoverMode,
    failuresBeforeInaccessible: POLICY_DEFAULTS.failuresBeforeInaccessible,
    probeTimeoutMs: POLICY_DEFAULTS.probeTimeoutMs,
    inaccessibleAfterMs: null,
    probeIntervalMs: POLICY_DEFAULTS.probeIntervalMs,
    access: [...POLICY_DEFAULTS.access],
    preFailoverHook: null,
    postFailoverHook: null,
    onPreHookFailure: POLICY_DEFAULTS.onPreHookFailure,
    createdAt: at,
  }
}
