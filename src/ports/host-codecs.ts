import * as t from 'io-ts'
import { JsonValue, Name, NonNegativeInt } from '../kernel/codecs.js'
import type { HookRequest, MountInfo, VmSpec } from './host.js'

/**
 * A host as an adapter is configured with it: its name, capacity, tags and whether it is up (default: online,
 * no tags). Shared by the host adapters (memory, process) and by embedders' own.
 *
 * @public
 */
export interface HostDefinition {
  readonly name: string
  readonly cpus: number
  readonly memoryMb: number
  readonly tags?: readonly string[]
  readonly online?: boolean
}


/**
 * Codec for {@link HostDefinition}.
 *
 * @public
 */
export const HostDefinitionCodec = t.intersection(
  [
    t.type({ name: Name, cpus: NonNegativeInt, memoryMb: NonNegativeInt }),
    t.partial({ tags: t.array(t.string), online: t.boolean }),
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
    disks: t.array(t.type({ volume: t.string, mountPath: t.string })),
    networks: t.array(t.string),
    tags: t.array(t.string),
    config: JsonValue,
  },
  'VmSpec',
)

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

