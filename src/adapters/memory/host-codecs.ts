import * as t from 'io-ts'
import { JsonValue, Name, NonNegativeInt } from '../../kernel/codecs.js'

/** A host the memory host adapter simulates: capacity, tags and whether it is up. */
export const HostDefinitionCodec = t.intersection(
  [
    t.type({ name: Name, cpus: NonNegativeInt, memoryMb: NonNegativeInt }),
    t.partial({ tags: t.array(t.string), online: t.boolean }),
  ],
  'HostDefinition',
)

/** A VM spec as `registerVm` accepts it. */
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

/** A mount as `mount` accepts it. */
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

/** A hook request as `runHook` accepts it. */
export const HookRequestCodec = t.type(
  { script: t.string, args: t.array(t.string), env: t.record(t.string, t.string), timeoutMs: NonNegativeInt },
  'HookRequest',
)

/** An I/O actor a test adds to the memory host. */
export const ActorDefinitionCodec = t.intersection(
  [
    t.type({ id: Name, kind: t.union([t.literal('process'), t.literal('vm')]), volumes: t.array(t.string) }),
    t.partial({ pid: NonNegativeInt }),
  ],
  'ActorDefinition',
)

/** How a memory VM answers a quiesce request. */
export const QuiesceBehaviourCodec = t.union([t.literal('ok'), t.literal('fail'), t.literal('hang')], 'QuiesceBehaviour')
