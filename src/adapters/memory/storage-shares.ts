import type { ShareInfo, ShareProbe } from '../../ports/storage.js'
import { requireAccess, requireName, requirePath, requireProtocol, requireRecord, storageError } from './storage-inputs.js'

function copyShare(share: ShareInfo): ShareInfo {
  return { ...share, access: [...share.access] }
}

/**
 * The shares of a memory storage: their descriptions by name, and the share-level probe. Volumes are looked up
 * through the functions the storage passes in, so a share always names an existing volume.
 */
export class ShareTable {
  readonly #shares = new Map<string, ShareInfo>()

  /** Adds a share on the volume `volumeName` resolves (it throws `E_NOT_FOUND` for an unknown one). */
  create(operation: string, share: Omit<ShareInfo, 'createdAt'>, volumeName: (name: string) => string, createdAt: number): ShareInfo {
    const request = requireRecord(operation, 'share', share)
    const name = requireName(operation, 'name', request.name)
    const volume = volumeName(request.volume)
    const path = requirePath(operation, request.path)
    const protocol = requireProtocol(operation, request.protocol)
    const access = requireAccess(operation, request.access)
    if (this.#shares.has(name)) throw storageError('E_CONFLICT', operation, `share "${name}" already exists`, { share: name })
    const info: ShareInfo = { name, volume, path, protocol, access, createdAt }
    this.#shares.set(name, info)
    return copyShare(info)
  }

  /** Removes a share; `E_NOT_FOUND` if there is none of that name. */
  delete(operation: string, name: string): void {
    this.#existing(operation, name)
    this.#shares.delete(name)
  }

  /** Replaces the rights a share grants. */
  setAccess(operation: string, name: string, access: readonly ('read' | 'write')[]): void {
    const share = this.#existing(operation, name)
    this.#shares.set(name, { ...share, access: requireAccess(operation, access) })
  }

  /** A copy of the share's description, if it exists. */
  get(name: string): ShareInfo | undefined {
    const share = this.#shares.get(name)
    return share === undefined ? undefined : copyShare(share)
  }

  /** Copies of every share, sorted by name. */
  list(): ShareInfo[] {
    return [...this.#shares.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(copyShare)
  }

  /** Names of the shares exported from `volume`. */
  namesOn(volume: string): string[] {
    return [...this.#shares.values()].filter((share) => share.volume === volume).map((share) => share.name)
  }

  /** Probes a share: deleted, offline (its volume is not online), access denied or online, in that order. */
  probe(operation: string, name: string, access: readonly ('read' | 'write')[], volumeOnline: (volume: string) => boolean): ShareProbe {
    const wanted = requireAccess(operation, access)
    const share = this.#shares.get(name)
    if (share === undefined) return { share: name, state: 'deleted', detail: `share "${name}" does not exist` }
    if (!volumeOnline(share.volume)) return { share: name, state: 'offline', detail: `volume "${share.volume}" is offline` }
    const refused = wanted.filter((right) => !share.access.includes(right))
    if (refused.length > 0) return { share: name, state: 'accessDenied', detail: `share "${name}" does not grant ${refused.join(', ')}` }
    return { share: name, state: 'online' }
  }

  #existing(operation: string, name: string): ShareInfo {
    const share = this.#shares.get(name)
    if (share === undefined) throw storageError('E_NOT_FOUND', operation, `share "${name}" does not exist`, { share: name })
    return share
  }
}
