import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { WorkflowContext, WorkflowEngine } from '../../kernel/workflow.js'
import type { SnapshotInfo, StoragePort, VolumeInfo } from '../../ports/storage.js'
import { decideAddSchedule, decideCatalogue, decideRemoveSchedule, decideUncatalogue } from './decide.js'
import type { SnapshotEvents } from './events.js'
import {
  AddScheduleInput,
  CloneSnapshotInput,
  CreateSnapshotInput,
  HoldSnapshotInput,
  ListSnapshotsInput,
  ScheduleIdInput,
  SnapshotRefInput,
  type AddScheduleOptions,
  type CloneSnapshotOptions,
  type CreateSnapshotOptions,
  type HoldSnapshotOptions,
  type ListSnapshotsOptions,
  type SnapshotRef,
} from './inputs.js'
import { snapshotKey, type CatalogEntry, type ScheduleRecord, type SnapshotJournalEvent, type SnapshotState } from './state.js'

/**
 * A snapshot as `snapshots.get` and `snapshots.list` return it: the catalog entry joined with what the storage
 * says now (size and holds).
 *
 * @public
 */
export interface SnapshotView extends CatalogEntry {
  readonly sizeBytes: number
  readonly holds: readonly string[]
}

/**
 * What the snapshot facade needs from the system.
 *
 * @public
 */
export interface SnapshotModuleDeps {
  readonly catalog: JournaledStore<SnapshotState, SnapshotJournalEvent>
  readonly workflows: WorkflowEngine
  readonly storage: (site: string) => StoragePort
  readonly events: EventSink<SnapshotEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
}

const CreateWorkflowInput = t.type({
  site: t.string,
  volume: t.string,
  name: t.string,
  labels: t.record(t.string, t.string),
  schedule: t.union([t.string, t.null]),
})
const DeleteWorkflowInput = t.type({ site: t.string, volume: t.string, name: t.string, expiredBy: t.union([t.string, t.null]) })

/** Workflow type names of the snapshot module. */
const CREATE = 'snapshot.create'
const DELETE = 'snapshot.delete'

/**
 * The snapshot facility: create, list, get, delete, restore, clone, hold and release snapshots on any site's
 * storage, with a catalog in the state store. Every method validates its options object and rejects with a
 * `DrError`; create and delete are durable workflows, so a crash between the storage call and the catalog update
 * is finished on restart.
 *
 * @public
 */
export class SnapshotFacade {
  readonly #deps: SnapshotModuleDeps
  #sequence = 0

  constructor(deps: SnapshotModuleDeps) {
    this.#deps = deps
    deps.workflows.register(CREATE, { input: CreateWorkflowInput, run: (ctx, input) => this.#createWorkflow(ctx, input) })
    deps.workflows.register(DELETE, { input: DeleteWorkflowInput, run: (ctx, input) => this.#deleteWorkflow(ctx, input) })
  }

  /** Takes a named snapshot of a volume and catalogues it. `E_CONFLICT` if the name is taken. */
  async create(options: CreateSnapshotOptions): Promise<SnapshotView> {
    const input = decode(CreateSnapshotInput, options, 'snapshots.create options')
    return this.take({ site: input.site, volume: input.volume, name: input.name, labels: input.labels ?? {}, schedule: null })
  }

  /** Takes and catalogues a snapshot on behalf of the module or a schedule (input already validated). */
  async take(input: t.TypeOf<typeof CreateWorkflowInput>): Promise<SnapshotView> {
    const storage = this.#storage(input.site)
    await this.#volume(storage, input.volume)
    if (this.#deps.catalog.state.snapshots[snapshotKey(input.site, input.volume, input.name)] !== undefined) {
      throw new DrError('E_CONFLICT', `snapshot "${input.name}" of ${input.site}/${input.volume} already exists`, { ...input })
    }
    await this.#deps.workflows.run(CREATE, this.#runId(CREATE, input), input)
    return this.get({ site: input.site, volume: input.volume, name: input.name })
  }

  /** One catalogued snapshot; `E_NOT_FOUND` if it is not in the catalog. */
  async get(ref: SnapshotRef): Promise<SnapshotView> {
    const input = decode(SnapshotRefInput, ref, 'snapshots.get options')
    const entry = this.#entry(input.site, input.volume, input.name)
    const info = await this.#info(input.site, input.volume, input.name)
    return { ...entry, sizeBytes: info.sizeBytes, holds: info.holds }
  }

  /** Catalogued snapshots of a site (or of one volume), oldest first. */
  async list(options: ListSnapshotsOptions): Promise<readonly SnapshotView[]> {
    const input = decode(ListSnapshotsInput, options, 'snapshots.list options')
    const storage = this.#storage(input.site)
    const entries = Object.values(this.#deps.catalog.state.snapshots)
      .filter((e) => e.site === input.site && (input.volume === undefined || e.volume === input.volume))
      .sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name))
    const byVolume = new Map<string, Map<string, SnapshotInfo>>()
    for (const volume of new Set(entries.map((e) => e.volume))) {
      const infos = await call(storage, 'listSnapshots', () => storage.listSnapshots(volume)).catch((error: unknown) => {
        if (isDrError(error, 'E_NOT_FOUND')) return []
        throw error
      })
      byVolume.set(volume, new Map(infos.map((info) => [info.name, info])))
    }
    return entries.flatMap((entry) => {
      const info = byVolume.get(entry.volume)?.get(entry.name)
      return info === undefined ? [] : [{ ...entry, sizeBytes: info.sizeBytes, holds: info.holds }]
    })
  }

  /** Deletes a snapshot. `E_PRECONDITION` while it is held (a replication base or restart point) or cloned. */
  async delete(ref: SnapshotRef): Promise<void> {
    const input = decode(SnapshotRefInput, ref, 'snapshots.delete options')
    this.#entry(input.site, input.volume, input.name)
    await this.remove(input.site, input.volume, input.name, null)
  }

  /** Deletes a catalogued snapshot on behalf of the module (retention names the schedule that expired it). */
  async remove(site: string, volume: string, name: string, expiredBy: string | null): Promise<void> {
    const info = await this.#info(site, volume, name)
    if (info.holds.length > 0) {
      throw new DrError('E_PRECONDITION', `snapshot "${name}" of ${site}/${volume} is held by ${info.holds.join(', ')}`, { site, volume, name, holds: info.holds })
    }
    const input = { site, volume, name, expiredBy }
    await this.#deps.workflows.run(DELETE, this.#runId(DELETE, input), input)
  }

  /** Rolls a volume back to a snapshot. Writes made after the snapshot are lost. */
  async restore(ref: SnapshotRef): Promise<void> {
    const input = decode(SnapshotRefInput, ref, 'snapshots.restore options')
    this.#entry(input.site, input.volume, input.name)
    const storage = this.#storage(input.site)
    await call(storage, 'restoreSnapshot', () => storage.restoreSnapshot(input.volume, input.name, this.#deps.token()))
    this.#deps.events.emit('snapshot.restored', 'warning', { site: input.site, volume: input.volume, name: input.name })
  }

  /** Creates a new writable volume from a snapshot. */
  async clone(options: CloneSnapshotOptions): Promise<VolumeInfo> {
    const input = decode(CloneSnapshotInput, options, 'snapshots.clone options')
    this.#entry(input.site, input.volume, input.name)
    const storage = this.#storage(input.site)
    const volume = await call(storage, 'cloneSnapshot', () => storage.cloneSnapshot(input.volume, input.name, input.clone, this.#deps.token()))
    this.#deps.events.emit('snapshot.cloned', 'info', { site: input.site, volume: input.volume, name: input.name, clone: input.clone })
    return volume
  }

  /** Holds a snapshot under `tag` so that neither users nor retention can delete it. Idempotent. */
  async hold(options: HoldSnapshotOptions): Promise<void> {
    const input = decode(HoldSnapshotInput, options, 'snapshots.hold options')
    const storage = this.#storage(input.site)
    await call(storage, 'holdSnapshot', () => storage.holdSnapshot(input.volume, input.name, input.tag, this.#deps.token()))
  }

  /** Releases hold `tag`. Idempotent. */
  async release(options: HoldSnapshotOptions): Promise<void> {
    const input = decode(HoldSnapshotInput, options, 'snapshots.release options')
    const storage = this.#storage(input.site)
    await call(storage, 'releaseSnapshot', () => storage.releaseSnapshot(input.volume, input.name, input.tag, this.#deps.token()))
  }

  /** Adds a schedule that snapshots a volume and applies a retention grid to the snapshots it took. */
  async addSchedule(options: AddScheduleOptions): Promise<ScheduleRecord> {
    const input = decode(AddScheduleInput, options, 'snapshots.addSchedule options')
    await this.#volume(this.#storage(input.site), input.volume)
    const record: ScheduleRecord = {
      id: input.id,
      site: input.site,
      volume: input.volume,
      spec: input.spec,
      prefix: input.prefix ?? input.id,
      retention: input.retention,
      lastRunAt: null,
    }
    await this.#deps.catalog.execute((state) => decideAddSchedule(state, record))
    return record
  }

  /** Removes a schedule; the snapshots it took stay. */
  async removeSchedule(options: { id: string }): Promise<void> {
    const input = decode(ScheduleIdInput, options, 'snapshots.removeSchedule options')
    await this.#deps.catalog.execute((state) => decideRemoveSchedule(state, input.id))
  }

  /** Every schedule, by id. */
  listSchedules(): readonly ScheduleRecord[] {
    return Object.values(this.#deps.catalog.state.schedules).sort((a, b) => a.id.localeCompare(b.id))
  }

  async #createWorkflow(ctx: WorkflowContext, input: t.TypeOf<typeof CreateWorkflowInput>): Promise<null> {
    const storage = this.#storage(input.site)
    const createdAt = await ctx.step('take-snapshot', async (s) => {
      const labels = { ...input.labels, 'drkit.request': s.idempotencyKey }
      const existing = await call(storage, 'snapshotInfo', () => storage.snapshotInfo(input.volume, input.name)).catch((error: unknown) => {
        if (isDrError(error, 'E_NOT_FOUND')) return undefined
        throw error
      })
      if (existing !== undefined) {
        if (existing.labels['drkit.request'] === s.idempotencyKey) return Number(existing.labels['drkit.takenAt'])
        throw new DrError('E_CONFLICT', `snapshot "${input.name}" of ${input.site}/${input.volume} already exists on storage`, { ...input })
      }
      // The catalog stamps snapshots with the coordinator's clock, not the storage's, so that retention and
      // schedules compare times from one clock even when a site's clock is skewed.
      const takenAt = this.#deps.clock.now()
      await call(storage, 'createSnapshot', () =>
        storage.createSnapshot(input.volume, input.name, this.#deps.token(), { ...labels, 'drkit.takenAt': String(takenAt) }),
      )
      return takenAt
    })
    await ctx.step('catalogue', async () => {
      const entry: CatalogEntry = { site: input.site, volume: input.volume, name: input.name, createdAt, labels: input.labels, schedule: input.schedule }
      const decided = await this.#deps.catalog.execute((state) => decideCatalogue(state, entry))
      if (decided.length > 0) this.#deps.events.emit('snapshot.created', 'info', { site: entry.site, volume: entry.volume, name: entry.name, createdAt, schedule: entry.schedule })
      return null
    })
    return null
  }

  async #deleteWorkflow(ctx: WorkflowContext, input: t.TypeOf<typeof DeleteWorkflowInput>): Promise<null> {
    const storage = this.#storage(input.site)
    await ctx.step('delete-snapshot', async () => {
      await call(storage, 'deleteSnapshot', () => storage.deleteSnapshot(input.volume, input.name, this.#deps.token())).catch((error: unknown) => {
        if (!isDrError(error, 'E_NOT_FOUND')) throw error
      })
      return null
    })
    await ctx.step('uncatalogue', async () => {
      const decided = await this.#deps.catalog.execute((state) => decideUncatalogue(state, input.site, input.volume, input.name))
      if (decided.length > 0) {
        const ref = { site: input.site, volume: input.volume, name: input.name }
        if (input.expiredBy === null) this.#deps.events.emit('snapshot.deleted', 'info', ref)
        else this.#deps.events.emit('snapshot.expired', 'info', { ...ref, schedule: input.expiredBy })
      }
      return null
    })
    return null
  }

  #runId(type: string, input: { site: string; volume: string; name: string }): string {
    return `${type}:${snapshotKey(input.site, input.volume, input.name)}:${this.#deps.clock.now()}.${this.#sequence++}`
  }

  #storage(site: string): StoragePort {
    return this.#deps.storage(site)
  }

  #entry(site: string, volume: string, name: string): CatalogEntry {
    const entry = this.#deps.catalog.state.snapshots[snapshotKey(site, volume, name)]
    if (entry === undefined) throw new DrError('E_NOT_FOUND', `snapshot "${name}" of ${site}/${volume} is not in the catalog`, { site, volume, name })
    return entry
  }

  async #info(site: string, volume: string, name: string): Promise<SnapshotInfo> {
    const storage = this.#storage(site)
    return call(storage, 'snapshotInfo', () => storage.snapshotInfo(volume, name))
  }

  async #volume(storage: StoragePort, volume: string): Promise<VolumeInfo> {
    return call(storage, 'volumeInfo', () => storage.volumeInfo(volume))
  }
}

function call<R>(storage: StoragePort, operation: string, run: () => Promise<R>): Promise<R> {
  return callAdapter(storage.kind, operation, run)
}
