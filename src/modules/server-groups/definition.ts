import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import type { Json } from '../../kernel/codecs.js'
import { DrError } from '../../kernel/errors.js'
import { DefineGroupInput, type DefineGroupOptions } from './inputs.js'
import type { ServerGroup } from './state.js'

/**
 * What a DR series snapshot replicates with each member (the `attachment` of its transfer): the group's
 * definition as `serverGroups.define` takes it — sites, members, interfaces, name records, mounts and the
 * embedder's configuration.
 *
 * @public
 */
export const GroupAttachmentCodec = t.type({ serverGroup: DefineGroupInput }, 'GroupAttachment')

/**
 * The attachment a series snapshot replicates for `group`.
 *
 * @public
 */
export function groupAttachment(group: ServerGroup): Json {
  const definition: DefineGroupOptions = {
    name: group.name,
    sites: [group.sites[0], group.sites[1]],
    members: [...group.members],
    interfaces: group.interfaces.map((i) => ({ ...i })),
    nameRecords: group.nameRecords.map((r) => ({ ...r })),
    mounts: group.mounts.map((m) => ({ ...m })),
    config: group.config,
  }
  return GroupAttachmentCodec.encode({ serverGroup: definition }) as unknown as Json
}

/**
 * The group definition in a replicated snapshot configuration; `E_NOT_FOUND` when the snapshot carries none,
 * `E_CORRUPT` when what it carries is not a group definition.
 *
 * @public
 */
export function definitionOf(configuration: Json, where: { site: string; volume: string; snapshot: string }): DefineGroupOptions {
  const carried = t.type({ attachment: t.unknown }).decode(configuration)
  const attachment = isLeft(carried) ? null : carried.right.attachment
  if (attachment === undefined || attachment === null) throw new DrError('E_NOT_FOUND', `snapshot "${where.snapshot}" of ${where.site}/${where.volume} carries no server group`, where)
  const decoded = GroupAttachmentCodec.decode(attachment)
  if (isLeft(decoded)) throw new DrError('E_CORRUPT', `snapshot "${where.snapshot}" of ${where.site}/${where.volume} carries a server group that does not decode`, where)
  return decoded.right.serverGroup
}
