import { callAdapter } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { ReadSource, StoragePort } from '../../ports/storage.js'

/**
 * How the volume module reaches one site's constituent volumes: the site's storage and the fence token every
 * mutating call carries. Reads take an optional snapshot, so the same table code serves the active file system
 * and any snapshot of it.
 *
 * @public
 */
export interface ConstituentIo {
  readonly storage: StoragePort
  readonly token: () => FenceToken
}

/** Reads `length` bytes at `offset` of a constituent (or of its snapshot `snapshot`). */
export function readBytes(io: ConstituentIo, volume: string, offset: number, length: number, snapshot?: string): Promise<Uint8Array> {
  const source: ReadSource | undefined = snapshot === undefined ? undefined : { snapshot }
  return callAdapter(io.storage.kind, 'read', () => io.storage.read(volume, offset, length, source))
}

/** Writes `data` at `offset` of a constituent; resolves once durable. */
export function writeBytes(io: ConstituentIo, volume: string, offset: number, data: Uint8Array): Promise<void> {
  return callAdapter(io.storage.kind, 'write', () => io.storage.write(volume, offset, data, io.token()))
}
