import * as t from 'io-ts'
import { JsonValue, Name, NonNegativeInt, PositiveInt } from '../kernel/codecs.js'
import type { HookRequest, HostPolicies, MountInfo, VmInfo, VmSpec } from './host.js'

/**
 * A host as an adapter is configured with it: its name, capacity, tags, whether it is up (default: online, no
 * tags) and the protection policies its data protection agent reports (default: none). Shared by the host
 * adapters (memory, process) and by embedders' own.
 *
 * @public
 */
export interface HostDefinition {
  readonly name: string
  readonly cpus: number
  readonly memoryMb: number
  readonly tags?: readonly string[]
  readonly online?: boolean
  readonly policies?: HostPolicies
}

/**
 * Codec for {@link HostPolicies}.
 *
 * @public
 */
export const HostPoliciesCodec = t.type({ backupEveryMs: PositiveInt, replicateEveryMs: PositiveInt }, 'HostPolicies')

/**
 * Codec for {@link HostDefinition}.
 *
 * @public
 */
export const HostDefinitionCodec = t.intersection(
  [
    t.type({ name: Name, cpus: NonNegativeInt, memoryMb: NonNegativeInt }),
    t.partial({ tags: t.array(t.string), online: t.boolean, policies: HostPoliciesCodec }),
  ],
  'HostDefinition',
)

/**
 * Codec for a {@link VmSpec} as `HostPort.registerVm` accepts it; adapters decode with it.
 *
 * @public
 */
export const VmSpecCodec = t.type(
  {
    id: Name,
    name: t.string,
    cpus: NonNegativeInt,
    memoryMb: NonNegativeInt,
    disks: t.readonlyArray(t.type({ volume: t.string, mountPath: t.string })),
    networks: t.readonlyArray(t.string),
    tags: t.readonlyArray(t.string),
    config: JsonValue,
  },
  'VmSpec',
)

/**
 * Codec for {@link HostCallOptions} (an optional idempotency key of 1 to 256 characters).
 *
 * @public
 */
export const HostCallOptionsCodec = t.partial(
  { idempotencyKey: t.refinement(t.string, (key) => key.length > 0 && key.length <= 256, 'IdempotencyKey (1-256 characters)') },
  'HostCallOptions',
)

/**
 * Codec for a {@link VmInfo} (a registered VM as `getVm` describes it), for callers that keep one in a journal.
 *
 * @public
 */
export const VmInfoCodec = t.intersection([VmSpecCodec, t.type({ host: t.string, power: t.union([t.literal('running'), t.literal('off')]) })], 'VmInfo')

/**
 * Codec for a {@link MountInfo} as `HostPort.mount` accepts it.
 *
 * @public
 */
export const MountInfoCodec = t.type(
  {
    path: t.string,
    volume: t.string,
    identity: t.string,
    options: t.record(t.string, t.string),
    readOnly: t.boolean,
  },
  'MountInfo',
)

/**
 * Codec for a {@link HookRequest} as `HostPort.runHook` accepts it.
 *
 * @public
 */
export const HookRequestCodec = t.type(
  { script: t.string, args: t.array(t.string), env: t.record(t.string, t.string), timeoutMs: NonNegativeInt },
  'HookRequest',
)

