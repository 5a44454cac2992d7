import type { EvMirrorView } from '../ev-mirror/index.js'
import type { ServerGroup } from './state.js'

/**
 * One member's line of `serverGroups.info` (the "replicate info" of a VDM): whether it is replicated, whether it
 * is alive or out of sync, and its last complete transfer.
 *
 * @public
 */
export interface GroupMemberInfo {
  readonly id: string
  readonly state: 'replicated' | 'non-replicated'
  readonly repState: 'alive' | 'out-of-sync'
  readonly lastTransferred: string | null
  readonly source: string
  readonly destination: string
}

/**
 * The info line of member relationship `id` of `group` (the "replicate info" of one file system).
 *
 * @public
 */
export function memberInfo(group: ServerGroup, id: string, rel: EvMirrorView): GroupMemberInfo {
  return {
    id,
    state: rel.lastTransferred === null ? 'non-replicated' : 'replicated',
    repState: group.outOfSync.includes(id) ? 'out-of-sync' : 'alive',
    lastTransferred: rel.lastTransferred?.name ?? null,
    source: `${rel.source.site}/${rel.source.volume}`,
    destination: `${rel.destination.site}/${rel.destination.volume}`,
  }
}
