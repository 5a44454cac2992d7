import type { Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { DrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { ShareInfo, ShareProbe } from '../../ports/storage.js'
import { AccessInput, checkJson, checkText, CreateShareInput } from './inputs.js'
import type { LocalPool } from './local-pool.js'

type Access = readonly ('read' | 'write')[]

/** Exports a path of a volume as a share record; the volume must exist and the name be free. */
export async function createShare(pool: LocalPool, request: Omit<ShareInfo, 'createdAt'>, token: FenceToken): Promise<ShareInfo> {
  pool.authorize(token, 'createShare')
  const input = decode(CreateShareInput, request, 'share')
  pool.state.volume(input.volume)
  if (pool.state.shares.has(input.name)) {
    throw new DrError('E_CONFLICT', `local: share "${input.name}" already exists`, { adapter: 'local', share: input.name })
  }
  const share: ShareInfo = {
    name: input.name,
    volume: input.volume,
    path: input.path,
    protocol: input.protocol,
    access: [...new Set(input.access)],
    createdAt: Date.now(),
  }
  await pool.commit({ op: 'createShare', share })
  return share
}

/** Removes a share record (the volume's data stays). */
export async function deleteShare(pool: LocalPool, name: string, token: FenceToken): Promise<void> {
  pool.authorize(token, 'deleteShare')
  pool.state.share(name)
  await pool.commit({ op: 'deleteShare', name })
}

/** Replaces the rights a share grants. */
export async function setShareAccess(pool: LocalPool, name: string, access: Access, token: FenceToken): Promise<void> {
  pool.authorize(token, 'setShareAccess')
  const rights = decode(AccessInput, access, 'share access')
  pool.state.share(name)
  await pool.commit({ op: 'setShareAccess', name, access: [...new Set(rights)] })
}

/** Probes a share: gone (or its volume gone), volume offline, rights refused, or online. Never rejects for these. */
export function probeShare(pool: LocalPool, name: string, access: Access): ShareProbe {
  const rights = decode(AccessInput, access, 'probe access')
  const share = pool.state.shares.get(name)
  if (share === undefined) return { share: name, state: 'deleted', detail: `share "${name}" does not exist` }
  const volume = pool.state.volumes.get(share.volume)
  if (volume === undefined) return { share: name, state: 'deleted', detail: `volume "${share.volume}" does not exist` }
  if (!volume.online) return { share: name, state: 'offline', detail: `volume "${share.volume}" is offline` }
  const refused = rights.filter((right) => !share.access.includes(right))
  if (refused.length > 0) return { share: name, state: 'accessDenied', detail: `share "${name}" does not grant ${refused.join(', ')}` }
  return { share: name, state: 'online' }
}

/** Shares sorted by name. */
export function listShares(pool: LocalPool): ShareInfo[] {
  return [...pool.state.shares.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Stores a configuration record on a volume. */
export async function putConfig(pool: LocalPool, volume: string, key: string, value: Json, token: FenceToken): Promise<void> {
  pool.authorize(token, 'putConfig')
  checkText(key, 'config key')
  const json = checkJson(value, 'config value')
  pool.state.volume(volume)
  await pool.commit({ op: 'putConfig', volume, key, value: structuredClone(json) })
}

/** Deletes a configuration record (idempotent). */
export async function deleteConfig(pool: LocalPool, volume: string, key: string, token: FenceToken): Promise<void> {
  pool.authorize(token, 'deleteConfig')
  if (!pool.state.volume(volume).config.has(key)) return
  await pool.commit({ op: 'deleteConfig', volume, key })
}

/** A volume's configuration records sorted by key. */
export function listConfig(pool: LocalPool, volume: string): Array<readonly [string, Json]> {
  return [...pool.state.volume(volume).config.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => [key, structuredClone(value)] as const)
}
