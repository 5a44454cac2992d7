import { DrError } from '../../kernel/errors.js'
import type { ConstituentIo } from './constituent-io.js'
import { appendObject, readObject } from './data-log.js'
import { KeyedMutex } from './keyed-mutex.js'
import { pathHash, type Locator } from './layout.js'
import { allocateId, readLocator, scanLocators, writeLocator } from './locator-table.js'
import { constituentName, placementTargets } from './members.js'
import { listStubs, probePath, writeSlot } from './namespace-table.js'
import { volumeKey, type VolumeRecord } from './state.js'

/**
 * Where an object was stored: its path, global object id, data constituent (storage volume and ordinal), byte
 * offset and length.
 *
 * @public
 */
export interface ObjectPlacement {
  readonly path: string
  readonly id: number
  readonly constituent: string
  readonly ordinal: number
  readonly offset: number
  readonly length: number
}

/**
 * The constituents and snapshot names to read an object through: the active file system (no snapshot names) or
 * the member snapshots of one overall snapshot.
 *
 * @public
 */
export interface ReadView {
  readonly namespace: { readonly volume: string; readonly snapshot?: string }
  readonly ols: { readonly volume: string; readonly snapshot?: string }
  /** The data constituent (and its snapshot) holding ordinal `ordinal`; `E_NOT_FOUND` when there is none. */
  data(ordinal: number): { readonly volume: string; readonly snapshot?: string }
}

/**
 * The read view of a volume's active file system.
 *
 * @public
 */
export function activeView(record: VolumeRecord): ReadView {
  return {
    namespace: { volume: constituentName(record.name, 'namespace', 0) },
    ols: { volume: constituentName(record.name, 'ols', 0) },
    data: (ordinal) => ({ volume: constituentName(record.name, 'data', ordinal) }),
  }
}

/**
 * A located object: the stub's global object id and what the OLS says about it, with the data constituent to
 * read it from.
 *
 * @public
 */
export interface ResolvedObject {
  readonly locator: Locator
  readonly data: { readonly volume: string; readonly snapshot?: string }
}

/**
 * The object API of expandable volumes. Objects are written in this order, each write acknowledged before the
 * next starts:
 *
 * 1. put: the object's bytes appended to a data constituent → its OLS record → its namespace stub;
 * 2. delete: the namespace stub → the OLS record.
 *
 * Object operations on one volume run one at a time (a per-volume in-process lock). A consistency group fences
 * the namespace first, then the OLS, then the data constituents. So once the namespace is fenced, no stub can
 * change, and the one operation that may be under way can only add an OLS record or data-constituent bytes
 * before it stops at its stub write, which waits for the unfence; everything queued behind it waits for the
 * lock. Every stub in the namespace snapshot was therefore written after its OLS record and bytes, which were
 * written before the OLS and data constituents were fenced — so the OLS and data snapshots hold them. Bytes are
 * only ever appended (never rewritten below the next free offset), so a locator in a snapshot keeps pointing at
 * the bytes it was written for.
 *
 * @public
 */
export class ObjectStore {
  readonly #lock = new KeyedMutex()
  readonly #io: (site: string) => ConstituentIo
  readonly #record: (site: string, name: string) => VolumeRecord

  /**
   * @param io - the constituent I/O of a site
   * @param record - the current catalog record of a volume (read inside the lock, so placement always sees
   *   the latest membership)
   */
  constructor(io: (site: string) => ConstituentIo, record: (site: string, name: string) => VolumeRecord) {
    this.#io = io
    this.#record = record
  }

  /** Stores (or replaces) the object at `path`. `E_PRECONDITION` (`reason: 'full'` / `'noSpace'`) when it cannot. */
  put(site: string, name: string, path: string, data: Uint8Array): Promise<ObjectPlacement> {
    return this.#lock.run(volumeKey(site, name), async () => {
      const record = this.#record(site, name)
      const io = this.#io(site)
      const ns = constituentName(name, 'namespace', 0)
      const ols = constituentName(name, 'ols', 0)
      const probe = await probePath(io, ns, record.geometry.namespaceSlots, path)
      if (probe.stub === undefined && probe.free === undefined) throw full(site, name, 'namespace')
      const id = probe.stub?.id ?? (await allocateId(io, ols, record.geometry.objectIds))
      const placed = await this.#append(io, record, pathHash(path), id, data)
      await writeLocator(io, ols, id, placed.locator)
      if (probe.stub === undefined && probe.free !== undefined) await writeSlot(io, ns, probe.free, { path, id })
      return { path, id, constituent: placed.volume, ordinal: placed.locator.ordinal, offset: placed.locator.offset, length: data.length }
    })
  }

  /** Removes the object at `path`: its stub first, then its OLS record. `E_NOT_FOUND` when there is none. */
  delete(site: string, name: string, path: string): Promise<void> {
    return this.#lock.run(volumeKey(site, name), async () => {
      const record = this.#record(site, name)
      const io = this.#io(site)
      const probe = await probePath(io, constituentName(name, 'namespace', 0), record.geometry.namespaceSlots, path)
      if (probe.stub === undefined) throw notFound(site, name, path)
      await writeSlot(io, constituentName(name, 'namespace', 0), probe.stub.slot, undefined)
      await writeLocator(io, constituentName(name, 'ols', 0), probe.stub.id, undefined)
    })
  }

  /** Follows `path` through a view: namespace stub → OLS record → data constituent. `E_NOT_FOUND` if absent. */
  async resolve(site: string, record: VolumeRecord, view: ReadView, path: string): Promise<ResolvedObject> {
    const io = this.#io(site)
    const probe = await probePath(io, view.namespace.volume, record.geometry.namespaceSlots, path, view.namespace.snapshot)
    if (probe.stub === undefined) throw notFound(site, record.name, path)
    const locator = await readLocator(io, view.ols.volume, probe.stub.id, view.ols.snapshot)
    if (locator === undefined) {
      throw new DrError('E_CORRUPT', `stub "${path}" of "${record.name}" names object ${probe.stub.id}, which the OLS does not locate`, {
        site,
        volume: record.name,
        path,
        id: probe.stub.id,
      })
    }
    return { locator, data: view.data(locator.ordinal) }
  }

  /** Locates global object id `id` through a view's OLS. `E_NOT_FOUND` when the OLS has no record of it. */
  async locate(site: string, record: VolumeRecord, view: ReadView, id: number): Promise<ResolvedObject> {
    const locator = id >= 1 && id <= record.geometry.objectIds ? await readLocator(this.#io(site), view.ols.volume, id, view.ols.snapshot) : undefined
    if (locator === undefined) throw new DrError('E_NOT_FOUND', `"${record.name}" has no object with global id ${id}`, { site, volume: record.name, id })
    return { locator, data: view.data(locator.ordinal) }
  }

  /** Reads the bytes of a resolved object (checked against its CRC-32). */
  read(site: string, resolved: ResolvedObject): Promise<Uint8Array> {
    return readObject(this.#io(site), resolved.data.volume, resolved.locator, resolved.data.snapshot)
  }

  /** Every stub of a view's namespace: path and global object id, sorted by path. */
  async list(site: string, record: VolumeRecord, view: ReadView): Promise<Array<{ readonly path: string; readonly id: number }>> {
    const stubs = await listStubs(this.#io(site), view.namespace.volume, record.geometry.namespaceSlots, view.namespace.snapshot)
    return stubs.map(({ path, id }) => ({ path, id })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  /**
   * Moves every object off the data constituents `ordinals` onto the active ones: bytes appended to the new
   * constituent, then the OLS record repointed (the stub does not change: it names the global object id). Each
   * move holds the lock; the scan that finds the objects holds it too, so a put that started before the
   * constituents began to drain has finished and is found. Returns the number of objects moved.
   */
  async evacuate(site: string, name: string, ordinals: readonly number[]): Promise<number> {
    const io = this.#io(site)
    const ols = constituentName(name, 'ols', 0)
    let moved = 0
    for (;;) {
      const pending = await this.#lock.run(volumeKey(site, name), async () => {
        const record = this.#record(site, name)
        return (await scanLocators(io, ols, record.geometry.objectIds)).filter((l) => ordinals.includes(l.ordinal)).map((l) => l.id)
      })
      if (pending.length === 0) return moved
      for (const id of pending) {
        await this.#lock.run(volumeKey(site, name), async () => {
          const record = this.#record(site, name)
          const locator = await readLocator(io, ols, id)
          if (locator === undefined || !ordinals.includes(locator.ordinal)) return
          const bytes = await readObject(io, constituentName(name, 'data', locator.ordinal), locator)
          const placed = await this.#append(io, record, id, id, bytes)
          await writeLocator(io, ols, id, placed.locator)
          moved++
        })
      }
    }
  }

  async #append(io: ConstituentIo, record: VolumeRecord, hash: number, id: number, data: Uint8Array): Promise<{ volume: string; locator: Locator }> {
    const targets = placementTargets(record)
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(hash + i) % targets.length]
      if (target === undefined) continue
      const placed = await appendObject(io, target.volume, record.geometry.dataSizeBytes, id, data)
      if (placed !== undefined) return { volume: target.volume, locator: { ...placed, ordinal: target.ordinal } }
    }
    throw new DrError('E_PRECONDITION', `no data constituent of "${record.name}" has room for ${data.length} more bytes`, {
      site: record.site,
      volume: record.name,
      reason: 'noSpace',
    })
  }
}

function full(site: string, name: string, what: string): DrError {
  return new DrError('E_PRECONDITION', `the ${what} of "${name}" is full`, { site, volume: name, reason: 'full' })
}

function notFound(site: string, name: string, path: string): DrError {
  return new DrError('E_NOT_FOUND', `"${name}" has no object "${path}"`, { site, volume: name, path })
}
