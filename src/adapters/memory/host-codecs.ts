import * as t from 'io-ts'
import { Name, NonNegativeInt } from '../../kernel/codecs.js'

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
