import { DrError } from '../../kernel/errors.js'
import { readBytes, writeBytes, type ConstituentIo } from './constituent-io.js'
import { LOCATOR_RECORD_BYTES, decodeLocator, decodeLocatorHeader, encodeLocator, encodeLocatorHeader, locatorOffset, type Locator } from './layout.js'

/** Records read per storage call while scanning (64 KiB). */
const SCAN_BATCH = 2048

/** Writes the header of an empty object-locator constituent (every record reads as zeros: free). */
export async function formatLocators(io: ConstituentIo, volume: string, objectIds: number): Promise<void> {
  await writeBytes(io, volume, 0, encodeLocatorHeader(objectIds))
}

/** The locator of global object id `id` in the OLS (or in its snapshot `snapshot`); undefined when free. */
export async function readLocator(io: ConstituentIo, volume: string, id: number, snapshot?: string): Promise<Locator | undefined> {
  return decodeLocator(await readBytes(io, volume, locatorOffset(id), LOCATOR_RECORD_BYTES, snapshot), id, volume)
}

/** Writes (or, with `locator` undefined, frees) the record of global object id `id`. */
export async function writeLocator(io: ConstituentIo, volume: string, id: number, locator: Locator | undefined): Promise<void> {
  await writeBytes(io, volume, locatorOffset(id), encodeLocator(locator))
}

/**
 * Issues a global object id: the next never-issued one while there are any (the header is advanced first), then
 * the lowest id whose record is free. Callers hold the expandable volume's object lock, so no two puts race for
 * an id. Reusing a freed id is safe for snapshots: an id is freed only after its stub was removed, so no stub —
 * live or in any consistent snapshot taken later — can still name it. `E_PRECONDITION` (`reason: 'full'`) when
 * every id is live.
 */
export async function allocateId(io: ConstituentIo, volume: string, objectIds: number): Promise<number> {
  const { nextId } = decodeLocatorHeader(await readBytes(io, volume, 0, 32), volume)
  if (nextId <= objectIds) {
    await writeBytes(io, volume, 0, encodeLocatorHeader(objectIds, nextId + 1))
    return nextId
  }
  for (let first = 1; first <= objectIds; first += SCAN_BATCH) {
    const count = Math.min(SCAN_BATCH, objectIds + 1 - first)
    const bytes = await readBytes(io, volume, locatorOffset(first), count * LOCATOR_RECORD_BYTES)
    for (let i = 0; i < count; i++) {
      if (bytes[i * LOCATOR_RECORD_BYTES] === 0) return first + i
    }
  }
  throw new DrError('E_PRECONDITION', `volume: every one of the ${objectIds} object ids of "${volume}" is in use`, { volume, reason: 'full' })
}

/** Every live locator of the OLS (or of its snapshot `snapshot`), by id. */
export async function scanLocators(io: ConstituentIo, volume: string, objectIds: number, snapshot?: string): Promise<Locator[]> {
  const { nextId } = decodeLocatorHeader(await readBytes(io, volume, 0, 32, snapshot), volume)
  const last = Math.min(objectIds, nextId - 1)
  const live: Locator[] = []
  for (let first = 1; first <= last; first += SCAN_BATCH) {
    const count = Math.min(SCAN_BATCH, last + 1 - first)
    const bytes = await readBytes(io, volume, locatorOffset(first), count * LOCATOR_RECORD_BYTES, snapshot)
    for (let i = 0; i < count; i++) {
      const locator = decodeLocator(bytes.subarray(i * LOCATOR_RECORD_BYTES, (i + 1) * LOCATOR_RECORD_BYTES), first + i, volume)
      if (locator !== undefined) live.push(locator)
    }
  }
  return live
}
