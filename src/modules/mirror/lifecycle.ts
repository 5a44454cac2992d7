import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { StoragePort } from '../../ports/storage.js'
import type { Coordinator } from './coordinator.js'
import { decideCreate, decideDeleted, decideStart } from './decide.js'
import { MIRROR_CONFIG, restartPointHold, sessionSnapshotPrefix, stagingVolume } from './naming.js'
import { RelationshipCodec, type Relationship } from './state.js'

/** Workflow type of a create. */
export const CREATE_WORKFLOW = 'mirror.create'
/** Workflow type of a delete. */
export const DELETE_WORKFLOW = 'mirror.delete'

/**
 * Input of the create workflow: the relationship to record and whether to start it.
 *
 * @public
 */
export const CreateWorkflowInput = t.type({ relationship: RelationshipCodec, start: t.boolean })

/**
 * Input of the delete workflow.
 *
 * @public
 */
export const DeleteWorkflowInput = t.type({ id: t.string })

function call<R>(storage: StoragePort, operation: string, run: () => Promise<R>): Promise<R> {
  return callAdapter(storage.kind, operation, run)
}

function ignoreMissing(error: unknown): undefined {
  if (isDrError(error, 'E_NOT_FOUND')) return undefined
  throw error
}

/**
 * Creates a relationship: prepares the destination volume (created with the source's size and block size, or
 * resized to match, and made read-only), records the relationship, and starts it (the initial copy follows).
 */
export async function runCreate(co: Coordinator, wf: WorkflowContext, input: t.TypeOf<typeof CreateWorkflowInput>): Promise<Json> {
  const rel = input.relationship
  await wf.step('prepare-destination', async () => {
    const source = co.storage(rel.a.site)
    const target = co.storage(rel.b.site)
    const info = await call(source, 'volumeInfo', () => source.volumeInfo(rel.a.volume))
    const existing = await call(target, 'volumeInfo', () => target.volumeInfo(rel.b.volume)).catch(ignoreMissing)
    if (existing === undefined) {
      await call(target, 'createVolume', () => target.createVolume({ name: rel.b.volume, sizeBytes: info.sizeBytes, blockSize: info.blockSize }, co.deps.token()))
    } else if (existing.sizeBytes !== info.sizeBytes) {
      await call(target, 'resizeVolume', () => target.resizeVolume(rel.b.volume, info.sizeBytes, co.deps.token()))
    }
    await call(target, 'setWritable', () => target.setWritable(rel.b.volume, false, co.deps.token()))
    return null
  })
  await wf.step('record', async () => {
    const current = co.deps.store.state.relationships[rel.id]
    if (current !== undefined && current.createdAt === rel.createdAt) return null
    await co.commit((state) => decideCreate(state, rel))
    co.deps.events.emit('mirror.created', 'info', { id: rel.id, source: rel.a, destination: rel.b })
    return null
  })
  if (input.start) {
    await wf.step('start', async () => {
      await co.attach(co.rel(rel.id), rel.epoch, { source: null, destination: null })
      const decided = await co.commit((state) => decideStart(state, rel.id, co.deps.clock.now()))
      if (decided.length > 0) co.deps.events.emit('mirror.started', 'info', { id: rel.id })
      return null
    })
  }
  return null
}

/**
 * Deletes a relationship: stops both sides, deletes the session's snapshots (delta sets, restart points; held
 * safety snapshots stay), staging volumes and records on both sites, then the relationship. The volumes and
 * their data stay; the destination stays read-only. Resumed after its last step, it finds nothing left to do.
 */
export async function runDelete(co: Coordinator, wf: WorkflowContext, input: t.TypeOf<typeof DeleteWorkflowInput>): Promise<Json> {
  const rel = co.deps.store.state.relationships[input.id]
  // Gone: its last step (forget) ran before a crash kept the workflow from finishing; the delete is done.
  if (rel === undefined) return null
  for (const [label, ref] of [['a', rel.a] as const, ['b', rel.b] as const]) {
    await wf.step(`clean-${label}`, async () => {
      await cleanSide(co, rel, ref)
      return null
    })
  }
  await wf.step('forget', async () => {
    const decided = await co.commit((state) => decideDeleted(state, rel.id, co.deps.clock.now()))
    if (decided.length > 0) co.deps.events.emit('mirror.deleted', 'info', { id: rel.id })
    return null
  })
  return null
}

async function cleanSide(co: Coordinator, rel: Relationship, ref: { readonly site: string; readonly volume: string }): Promise<void> {
  const storage = co.storage(ref.site)
  const agent = await co.agent(ref.site)
  await agent.forget(rel.id, ref.volume)
  const snapshots = await call(storage, 'listSnapshots', () => storage.listSnapshots(ref.volume)).catch(ignoreMissing)
  for (const snap of snapshots ?? []) {
    if (!snap.name.startsWith(sessionSnapshotPrefix(rel.id))) continue
    if (snap.holds.includes(restartPointHold(rel.id))) {
      await call(storage, 'releaseSnapshot', () => storage.releaseSnapshot(ref.volume, snap.name, restartPointHold(rel.id), co.deps.token()))
    }
    if (snap.holds.some((h) => h !== restartPointHold(rel.id))) continue
    await call(storage, 'deleteSnapshot', () => storage.deleteSnapshot(ref.volume, snap.name, co.deps.token())).catch(ignoreMissing)
  }
  const staging = stagingVolume(ref.volume)
  if ((await call(storage, 'volumeInfo', () => storage.volumeInfo(staging)).catch(ignoreMissing)) !== undefined) {
    await call(storage, 'deleteVolume', () => storage.deleteVolume(staging, co.deps.token()))
  }
  for (const key of [MIRROR_CONFIG.session, MIRROR_CONFIG.progress]) {
    await call(storage, 'deleteConfig', () => storage.deleteConfig(ref.volume, key, co.deps.token())).catch(ignoreMissing)
  }
}

/** Checks the sides of a relationship before anything is changed (used by create). */
export async function checkCreate(co: Coordinator, rel: Relationship, overwrite: boolean): Promise<void> {
  const source = co.storage(rel.a.site)
  const target = co.storage(rel.b.site)
  const info = await call(source, 'volumeInfo', () => source.volumeInfo(rel.a.volume))
  const existing = await call(target, 'volumeInfo', () => target.volumeInfo(rel.b.volume)).catch(ignoreMissing)
  if (existing === undefined) return
  if (existing.blockSize !== info.blockSize) {
    throw new DrError('E_PRECONDITION', `destination ${rel.b.site}/${rel.b.volume} has block size ${existing.blockSize}, the source ${info.blockSize}`, { ...rel.b })
  }
  if (existing.allocatedBytes > 0 && !overwrite) {
    throw new DrError('E_PRECONDITION', `destination ${rel.b.site}/${rel.b.volume} holds data; pass destination.overwrite: true to replace it`, { ...rel.b })
  }
  const snapshots = await call(target, 'listSnapshots', () => target.listSnapshots(rel.b.volume))
  if (!overwrite && snapshots.some((s) => !s.name.startsWith(sessionSnapshotPrefix(rel.id)))) {
    throw new DrError('E_PRECONDITION', `destination ${rel.b.site}/${rel.b.volume} has snapshots; the mirror would overwrite the volume they belong to`, { ...rel.b })
  }
}
