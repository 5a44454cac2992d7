import { randomUUID } from 'node:crypto'
import { DrError, callAdapter } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { getOrThrow } from '../../kernel/either.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { StoragePort } from '../../ports/storage.js'
import { checkClientAccess, checkSnapshotAccess, chooseHandleSource, dataHandle, handleView, type DataHandle, type HandleSource } from './access.js'
import type { ConstituentIo } from './constituent-io.js'
import {
  decideAdoptSnapshot,
  decideBeginDelete,
  decideBeginExpand,
  decideBeginShrink,
  decideOpenGroup,
  decideSetRedirect,
  decideSetReplica,
  findVolume,
  volumeSnapshotsOf,
} from './decide.js'
import type { VolumeEvents } from './events.js'
import { DEFAULT_UNFENCE_RETRY } from './fence-ops.js'
import { GROUP_WORKFLOW, GroupSnapshotWorkflow, GroupWorkflowInput } from './group-workflow.js'
import {
  AdoptSnapshotInput,
  CreateVolumeInput,
  ExpandVolumeInput,
  ListObjectsInput,
  ListVolumesInput,
  ObjectIdHandleInput,
  ObjectRefInput,
  PutObjectInput,
  SetReadRedirectInput,
  SetReplicaInput,
  ShrinkVolumeInput,
  SnapshotHandleInput,
  SnapshotVolumeInput,
  ExpandableVolumeRefInput,
  VolumeSnapshotRefInput,
  type AdoptSnapshotOptions,
  type CreateVolumeOptions,
  type ExpandVolumeOptions,
  type ListObjectsOptions,
  type ObjectIdHandle,
  type ObjectRef,
  type PutObjectOptions,
  type SetReadRedirectOptions,
  type SetReplicaOptions,
  type ShrinkVolumeOptions,
  type SnapshotHandle,
  type SnapshotVolumeOptions,
  type ExpandableVolumeRef,
  type VolumeSnapshotRef,
} from './inputs.js'
import { roundToBlocks } from './layout.js'
import { constituentName } from './members.js'
import { MEMBERSHIP_WORKFLOWS, MembershipInputs, MembershipWorkflows } from './membership-workflows.js'
import { ObjectStore, activeView, type ObjectPlacement, type ResolvedObject } from './objects.js'
import { DELETE_SNAPSHOT_WORKFLOW, DeleteSnapshotWorkflowInput, deleteSnapshotWorkflow, requireUnheld } from './snapshot-delete-workflow.js'
import { volumeKey, type SnapshotEntry, type VolumeCatalogState, type VolumeJournalEvent, type VolumeRecord } from './state.js'

/** Objects a volume holds unless `maxObjects` says otherwise. */
const DEFAULT_MAX_OBJECTS = 4096
/** The maximum fence-hold time of a volume unless `maxFenceHoldMs` says otherwise. */
const DEFAULT_MAX_FENCE_HOLD_MS = 30_000

/**
 * An expandable volume as the facade returns it: its catalog record (members with roles, ordinals and states;
 * the open group and change, if any; the last group's outcome; the AFS read redirect).
 *
 * @public
 */
export type VolumeView = VolumeRecord

/**
 * An overall snapshot as the facade returns it: its catalog entry.
 *
 * @public
 */
export type VolumeSnapshot = SnapshotEntry

/**
 * What the volume facade needs from the system.
 *
 * @public
 */
export interface VolumeModuleDeps {
  readonly catalog: JournaledStore<VolumeCatalogState, VolumeJournalEvent>
  readonly workflows: WorkflowEngine
  readonly storage: (site: string) => StoragePort
  readonly events: EventSink<VolumeEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
  /** How unfencing is retried (default {@link DEFAULT_UNFENCE_RETRY}). */
  readonly unfenceRetry?: RetryPolicy
}

/**
 * Expandable volumes: a namespace constituent, an object-locator constituent and N data constituents on one
 * site's storage, grown and shrunk online, with a small object API and consistency-group snapshots taken under
 * ordered I/O fences. Every method validates its options object with io-ts and rejects with a `DrError`; a
 * rejected call changes nothing. Create, expand, shrink, delete, snapshot and deleteSnapshot are durable
 * workflows: after a crash, `recover()` on the system finishes or compensates them.
 *
 * @public
 */
export class VolumeFacade {
  readonly #deps: VolumeModuleDeps
  readonly #objects: ObjectStore

  constructor(deps: VolumeModuleDeps) {
    this.#deps = deps
    const io = (site: string): ConstituentIo => ({ storage: deps.storage(site), token: deps.token })
    this.#objects = new ObjectStore(io, (site, name) => this.#record(site, name))
    const group = new GroupSnapshotWorkflow({ catalog: deps.catalog, io, events: deps.events, clock: deps.clock, unfenceRetry: deps.unfenceRetry ?? DEFAULT_UNFENCE_RETRY })
    const membership = new MembershipWorkflows({ catalog: deps.catalog, io, events: deps.events, clock: deps.clock, objects: this.#objects })
    const { workflows } = deps
    workflows.register(GROUP_WORKFLOW, { input: GroupWorkflowInput, run: (ctx, input) => group.run(ctx, input) })
    workflows.register(MEMBERSHIP_WORKFLOWS.create, { input: MembershipInputs.create, run: (ctx, input) => membership.create(ctx, input) })
    workflows.register(MEMBERSHIP_WORKFLOWS.expand, { input: MembershipInputs.expand, run: async (ctx, input) => [...(await membership.expand(ctx, input))] })
    workflows.register(MEMBERSHIP_WORKFLOWS.shrink, { input: MembershipInputs.shrink, run: async (ctx, input) => [...(await membership.shrink(ctx, input))] })
    workflows.register(MEMBERSHIP_WORKFLOWS.delete, { input: MembershipInputs.delete, run: (ctx, input) => membership.delete(ctx, input) })
    workflows.register(DELETE_SNAPSHOT_WORKFLOW, {
      input: DeleteSnapshotWorkflowInput,
      run: (ctx, input) => deleteSnapshotWorkflow({ catalog: deps.catalog, io, events: deps.events }, ctx, input),
    })
  }

  /** Creates an expandable volume with N data constituents of `size` each. `E_CONFLICT` if the name is taken. */
  async create(options: CreateVolumeOptions): Promise<VolumeView> {
    const input = decode(CreateVolumeInput, options, 'volumes.create options')
    this.#deps.storage(input.site)
    if (this.#state().volumes[volumeKey(input.site, input.volume)] !== undefined) {
      throw new DrError('E_CONFLICT', `expandable volume "${input.volume}" already exists on site "${input.site}"`, { site: input.site, volume: input.volume })
    }
    await this.#requireFree(input.site, [
      constituentName(input.volume, 'namespace', 0),
      constituentName(input.volume, 'ols', 0),
      ...Array.from({ length: input.dataConstituents }, (_, i) => constituentName(input.volume, 'data', i + 1)),
    ])
    const maxObjects = input.maxObjects ?? DEFAULT_MAX_OBJECTS
    const run = {
      site: input.site,
      volume: input.volume,
      dataConstituents: input.dataConstituents,
      geometry: { namespaceSlots: 2 * maxObjects, objectIds: 2 * maxObjects, dataSizeBytes: roundToBlocks(input.size) },
      maxFenceHoldMs: input.maxFenceHoldMs ?? DEFAULT_MAX_FENCE_HOLD_MS,
    }
    await this.#deps.workflows.run(MEMBERSHIP_WORKFLOWS.create, this.#runId(MEMBERSHIP_WORKFLOWS.create, input.site, input.volume), run)
    return this.#record(input.site, input.volume)
  }

  /** One expandable volume; `E_NOT_FOUND` if it does not exist. */
  async get(ref: ExpandableVolumeRef): Promise<VolumeView> {
    const input = decode(ExpandableVolumeRefInput, ref, 'volumes.get options')
    return this.#record(input.site, input.volume)
  }

  /** The expandable volumes of a site, by name. */
  async list(options: { site: string }): Promise<readonly VolumeView[]> {
    const input = decode(ListVolumesInput, options, 'volumes.list options')
    this.#deps.storage(input.site)
    return Object.values(this.#state().volumes)
      .filter((r) => r.site === input.site)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** Adds data constituents (new ordinals). `E_CONFLICT` while a snapshot or another change runs on the volume. */
  async expand(options: ExpandVolumeOptions): Promise<VolumeView> {
    const input = decode(ExpandVolumeInput, options, 'volumes.expand options')
    getOrThrow(decideBeginExpand(this.#state(), input.site, input.volume, '', input.add, this.#deps.clock.now()))
    const next = this.#record(input.site, input.volume).nextOrdinal
    await this.#requireFree(input.site, Array.from({ length: input.add }, (_, i) => constituentName(input.volume, 'data', next + i)))
    await this.#deps.workflows.run(MEMBERSHIP_WORKFLOWS.expand, this.#runId(MEMBERSHIP_WORKFLOWS.expand, input.site, input.volume), { ...input })
    return this.#record(input.site, input.volume)
  }

  /**
   * Removes data constituents after evacuating their objects to the others. `E_CONFLICT` while a snapshot or
   * another change runs; `E_PRECONDITION` if no data constituent would remain.
   */
  async shrink(options: ShrinkVolumeOptions): Promise<VolumeView> {
    const input = decode(ShrinkVolumeInput, options, 'volumes.shrink options')
    getOrThrow(decideBeginShrink(this.#state(), input.site, input.volume, '', input.remove, this.#deps.clock.now()))
    const remove = typeof input.remove === 'number' ? input.remove : [...input.remove]
    await this.#deps.workflows.run(MEMBERSHIP_WORKFLOWS.shrink, this.#runId(MEMBERSHIP_WORKFLOWS.shrink, input.site, input.volume), { site: input.site, volume: input.volume, remove })
    return this.#record(input.site, input.volume)
  }

  /** Deletes an expandable volume and its constituents. `E_PRECONDITION` while it has snapshots. */
  async delete(ref: ExpandableVolumeRef): Promise<void> {
    const input = decode(ExpandableVolumeRefInput, ref, 'volumes.delete options')
    getOrThrow(decideBeginDelete(this.#state(), input.site, input.volume, '', this.#deps.clock.now()))
    await this.#deps.workflows.run(MEMBERSHIP_WORKFLOWS.delete, this.#runId(MEMBERSHIP_WORKFLOWS.delete, input.site, input.volume), { ...input })
  }

  /**
   * Stores (or replaces) an object. Waits while a consistency group has the constituents it writes fenced. A
   * replica refuses it (`E_PRECONDITION`, `reason: 'replica'`).
   */
  async putObject(options: PutObjectOptions): Promise<ObjectPlacement> {
    const input = decode(PutObjectInput, options, 'volumes.putObject options')
    getOrThrow(checkClientAccess(this.#ready(input.site, input.volume), 'write'))
    return this.#objects.put(input.site, input.volume, input.path, input.data)
  }

  /** Reads an object of the active file system (the live constituents, whatever the read redirect; not on a replica). */
  async getObject(ref: ObjectRef): Promise<Uint8Array> {
    const input = decode(ObjectRefInput, ref, 'volumes.getObject options')
    const record = getOrThrow(checkClientAccess(this.#ready(input.site, input.volume), 'live'))
    return this.#objects.read(input.site, await this.#objects.resolve(input.site, record, activeView(record), input.path))
  }

  /** Deletes an object; `E_NOT_FOUND` if there is none at that path. A replica refuses it. */
  async deleteObject(ref: ObjectRef): Promise<void> {
    const input = decode(ObjectRefInput, ref, 'volumes.deleteObject options')
    getOrThrow(checkClientAccess(this.#ready(input.site, input.volume), 'write'))
    await this.#objects.delete(input.site, input.volume, input.path)
  }

  /**
   * The objects (path and global object id) of the active file system (not on a replica), or — with `snapshot` —
   * of an overall snapshot (0: the active file system after the read redirect), sorted by path.
   */
  async listObjects(options: ListObjectsOptions): Promise<ReadonlyArray<{ readonly path: string; readonly id: number }>> {
    const input = decode(ListObjectsInput, options, 'volumes.listObjects options')
    if (input.snapshot === undefined) {
      const record = getOrThrow(checkClientAccess(this.#record(input.site, input.volume), 'live'))
      return this.#objects.list(input.site, record, activeView(record))
    }
    const { record, source } = this.#source({ ...input, snapshot: input.snapshot })
    return this.#objects.list(input.site, record, handleView(record, source))
  }

  /**
   * Takes a consistency-group snapshot of every constituent under ordered I/O fences and catalogues it. Rejects
   * with the cause — after unfencing everything in reverse order and deleting the member snapshots taken — when
   * a fence or a snapshot fails, the storage is unreachable, `signal` aborts, or the fences were held longer
   * than `maxFenceHoldMs` (`E_TIMEOUT`). `E_CONFLICT` while another snapshot or a membership change runs.
   */
  async snapshot(options: SnapshotVolumeOptions): Promise<VolumeSnapshot> {
    const input = decode(SnapshotVolumeInput, options, 'volumes.snapshot options')
    this.#deps.storage(input.site)
    const record = getOrThrow(findVolume(this.#state(), input.site, input.volume))
    const maxFenceHoldMs = input.maxFenceHoldMs ?? record.maxFenceHoldMs
    const at = this.#deps.clock.now()
    getOrThrow(decideOpenGroup(this.#state(), { site: input.site, name: input.volume, id: '', snapshotName: input.name, at, maxFenceHoldMs }))
    const run: GroupWorkflowInput = { site: input.site, volume: input.volume, name: input.name, allowedClients: input.allowedClients ?? null, maxFenceHoldMs }
    const id = this.#runId(GROUP_WORKFLOW, input.site, `${input.volume}@${input.name}`)
    await this.#deps.workflows.run(GROUP_WORKFLOW, id, run, input.signal === undefined ? {} : { signal: input.signal })
    return this.#snapshotNamed(input.site, input.volume, input.name)
  }

  /** The catalogued overall snapshots of a volume, oldest first. */
  async listSnapshots(ref: ExpandableVolumeRef): Promise<readonly VolumeSnapshot[]> {
    const input = decode(ExpandableVolumeRefInput, ref, 'volumes.listSnapshots options')
    getOrThrow(findVolume(this.#state(), input.site, input.volume))
    return volumeSnapshotsOf(this.#state(), input.site, input.volume)
  }

  /**
   * Deletes an overall snapshot: every member snapshot, then its catalog entry. `E_PRECONDITION` while it is the
   * volume's read-redirect target or a member snapshot is held (a replication base).
   */
  async deleteSnapshot(ref: VolumeSnapshotRef): Promise<void> {
    const input = decode(VolumeSnapshotRefInput, ref, 'volumes.deleteSnapshot options')
    const record = this.#record(input.site, input.volume)
    const entry = this.#snapshotNamed(input.site, input.volume, input.name)
    const where = { site: input.site, volume: input.volume, snapshot: input.name }
    if (record.readRedirect === entry.id) throw new DrError('E_PRECONDITION', `snapshot "${input.name}" serves the read redirect of "${input.volume}"`, { ...where, reason: 'redirectTarget' })
    await requireUnheld(this.#deps.storage(input.site), entry, where)
    const run = { site: input.site, volume: input.volume, id: entry.id, name: entry.name }
    await this.#deps.workflows.run(DELETE_SNAPSHOT_WORKFLOW, this.#runId(DELETE_SNAPSHOT_WORKFLOW, input.site, `${input.volume}@${input.name}`), run)
  }

  /**
   * Resolves a client handle without reading: through the namespace (snapshot) to the stub, the OLS (snapshot)
   * to the locator, and the snapshot catalog to the data constituent's own snapshot. Id 0 follows the volume's
   * read redirect when one is set. `E_NOT_FOUND` (unknown snapshot, path, or a constituent that is not a
   * member of the snapshot), `E_PRECONDITION` (invalid snapshot; `reason: 'accessDenied'` for a client the
   * snapshot does not allow).
   */
  async resolveHandle(handle: SnapshotHandle): Promise<DataHandle> {
    const input = decode(SnapshotHandleInput, handle, 'volumes.resolveHandle options')
    return (await this.#resolve(input)).handle
  }

  /** Reads an object through a client handle (see {@link VolumeFacade.resolveHandle}). */
  async readSnapshotObject(handle: SnapshotHandle): Promise<Uint8Array> {
    const input = decode(SnapshotHandleInput, handle, 'volumes.readSnapshotObject options')
    return this.#objects.read(input.site, (await this.#resolve(input)).resolved)
  }

  /**
   * Reads an object through a handle that names it by global object id and location id (`ordinal`). When the
   * object is no longer there — moved to another data constituent, or the constituent removed — the location is
   * stale: the OLS gives the new one, the read is served from it, and the handle returned carries the same global
   * id with the new location (`relocated: true`); the stale location is never read. Snapshot 0 follows the read
   * redirect, and access is checked as for {@link VolumeFacade.readSnapshotObject}.
   */
  async readObjectById(handle: ObjectIdHandle): Promise<{ readonly data: Uint8Array; readonly handle: DataHandle; readonly relocated: boolean }> {
    const input = decode(ObjectIdHandleInput, handle, 'volumes.readObjectById options')
    const { record, source } = this.#source(input)
    const resolved = await this.#objects.locate(input.site, record, handleView(record, source), input.id)
    const data = await this.#objects.read(input.site, resolved)
    return { data, handle: dataHandle(input.site, input.volume, source, resolved), relocated: resolved.locator.ordinal !== input.ordinal }
  }

  /**
   * Points reads of the active file system (handles with snapshot 0) at a valid overall snapshot, or back at the
   * active file system with null. The mirror module calls it on a destination once a snapshot is complete on
   * every constituent. An invalid snapshot is never a target (`E_PRECONDITION`).
   */
  async setReadRedirect(options: SetReadRedirectOptions): Promise<void> {
    const input = decode(SetReadRedirectInput, options, 'volumes.setReadRedirect options')
    const from = this.#record(input.site, input.volume).readRedirect
    const decided = await this.#deps.catalog.execute((state) => decideSetRedirect(state, input.site, input.volume, input.snapshot))
    if (decided.length > 0) this.#deps.events.emit('volume.readRedirected', 'info', { site: input.site, volume: input.volume, from, to: input.snapshot })
  }

  /**
   * Marks the volume as the read-only side of a replication relationship (or, with null, gives it back to its
   * clients): a replica refuses client writes and live reads, and serves reads of its active file system only
   * through its read redirect — `E_UNAVAILABLE` until it has one. The replicator calls it; the storage-level
   * writability of the constituents is the replicator's to manage.
   */
  async setReplica(options: SetReplicaOptions): Promise<void> {
    const input = decode(SetReplicaInput, options, 'volumes.setReplica options')
    this.#deps.storage(input.site)
    const decided = await this.#deps.catalog.execute((state) => decideSetReplica(state, input.site, input.volume, input.replicaOf))
    if (decided.length > 0) this.#deps.events.emit('volume.replicaChanged', 'info', { site: input.site, volume: input.volume, replicaOf: input.replicaOf })
  }

  /**
   * Catalogues an overall snapshot whose member snapshots already exist on the constituents (a replicator made
   * them): every member snapshot must exist (`E_NOT_FOUND`) and belong to the volume (`E_PRECONDITION`).
   */
  async adoptSnapshot(options: AdoptSnapshotOptions): Promise<VolumeSnapshot> {
    const input = decode(AdoptSnapshotInput, options, 'volumes.adoptSnapshot options')
    const storage = this.#deps.storage(input.site)
    getOrThrow(findVolume(this.#state(), input.site, input.volume))
    for (const member of input.members) await callAdapter(storage.kind, 'snapshotInfo', () => storage.snapshotInfo(member.volume, member.snapshot))
    const entry: Omit<SnapshotEntry, 'id'> = {
      site: input.site,
      volume: input.volume,
      name: input.name,
      createdAt: input.createdAt ?? this.#deps.clock.now(),
      valid: input.valid ?? true,
      allowedClients: input.allowedClients === undefined ? null : [...input.allowedClients],
      members: input.members.map((m) => ({ ...m })),
    }
    await this.#deps.catalog.execute((state) => decideAdoptSnapshot(state, entry))
    const adopted = this.#snapshotNamed(input.site, input.volume, input.name)
    this.#deps.events.emit('volume.catalogUpdated', 'info', { site: input.site, volume: input.volume, snapshot: input.name, id: adopted.id, change: 'adopted' })
    return adopted
  }

  async #resolve(input: { site: string; volume: string; snapshot: number; path: string; client?: string }): Promise<{ handle: DataHandle; resolved: ResolvedObject }> {
    const { record, source } = this.#source(input)
    const resolved = await this.#objects.resolve(input.site, record, handleView(record, source), input.path)
    return { handle: dataHandle(input.site, input.volume, source, resolved), resolved }
  }

  /** The volume and the source (after the redirect check and the access check) a client handle reads from. */
  #source(input: { site: string; volume: string; snapshot: number; client?: string }): { record: VolumeRecord; source: HandleSource } {
    const record = this.#record(input.site, input.volume)
    const source = getOrThrow(chooseHandleSource(this.#state(), record, input.snapshot))
    if (source.kind === 'snapshot') getOrThrow(checkSnapshotAccess(source.entry, input.client))
    return { record, source }
  }

  /** Refuses with `E_CONFLICT` when any of `names` is already a storage volume of the site. */
  async #requireFree(site: string, names: readonly string[]): Promise<void> {
    const storage = this.#deps.storage(site)
    const wanted = new Set(names)
    const taken = (await callAdapter(storage.kind, 'listVolumes', () => storage.listVolumes())).filter((v) => wanted.has(v.name)).map((v) => v.name)
    if (taken.length > 0) throw new DrError('E_CONFLICT', `storage volumes ${taken.join(', ')} already exist on site "${site}"`, { site, taken })
  }

  #state(): VolumeCatalogState {
    return this.#deps.catalog.state
  }

  #record(site: string, name: string): VolumeRecord {
    this.#deps.storage(site)
    return getOrThrow(findVolume(this.#state(), site, name))
  }

  #ready(site: string, name: string): VolumeRecord {
    const record = this.#record(site, name)
    if (record.status !== 'ready') {
      throw new DrError('E_PRECONDITION', `expandable volume "${name}" is ${record.status}`, { site, volume: name, status: record.status })
    }
    return record
  }

  #snapshotNamed(site: string, volume: string, name: string): SnapshotEntry {
    const entry = volumeSnapshotsOf(this.#state(), site, volume).find((e) => e.name === name)
    if (entry === undefined) throw new DrError('E_NOT_FOUND', `"${volume}" has no snapshot named "${name}"`, { site, volume, snapshot: name })
    return entry
  }

  #runId(type: string, site: string, subject: string): string {
    return `${type}:${site}/${subject}:${randomUUID()}`
  }
}
