import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { EventSink } from '../../kernel/events.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { ConstituentIo } from './constituent-io.js'
import { decideForgetRetired, decideInvalidateSnapshot, decideRemoveSnapshot, unreferencedRetired } from './decide.js'
import type { VolumeEvents } from './events.js'
import { destroyConstituent } from './provisioning.js'
import type { StoragePort } from '../../ports/storage.js'
import type { SnapshotEntry, VolumeCatalogState, VolumeJournalEvent } from './state.js'

/**
 * The workflow type that deletes an overall snapshot.
 *
 * @public
 */
export const DELETE_SNAPSHOT_WORKFLOW = 'volume.deleteSnapshot'

/**
 * The journaled input of a snapshot deletion: the volume and the overall snapshot id.
 *
 * @public
 */
export const DeleteSnapshotWorkflowInput = t.type({ site: t.string, volume: t.string, id: t.number, name: t.string })

/**
 * What deleting a snapshot needs.
 *
 * @public
 */
export interface DeleteSnapshotDeps {
  readonly catalog: JournaledStore<VolumeCatalogState, VolumeJournalEvent>
  readonly io: (site: string) => ConstituentIo
  readonly events: EventSink<VolumeEvents>
}

/**
 * Deletes an overall snapshot, forward-only and resumable: the entry is marked invalid first (nobody reads a
 * half-deleted snapshot), then every member snapshot is deleted, then the entry leaves the catalog, and finally
 * retired constituents that no snapshot references any more are deleted.
 *
 * @public
 */
export async function deleteSnapshotWorkflow(deps: DeleteSnapshotDeps, ctx: WorkflowContext, input: t.TypeOf<typeof DeleteSnapshotWorkflowInput>): Promise<null> {
  const { catalog, events } = deps
  const io = deps.io(input.site)
  const where = { site: input.site, volume: input.volume, snapshot: input.name, id: input.id }
  const members = await ctx.step('invalidate', async () => {
    const decided = await catalog.execute((state) => decideInvalidateSnapshot(state, input.id))
    if (decided.length > 0) events.emit('volume.catalogUpdated', 'info', { ...where, change: 'invalidated' })
    return (catalog.state.snapshots[String(input.id)]?.members ?? []).map((m) => ({ volume: m.volume, snapshot: m.snapshot }))
  })
  await ctx.step('delete-members', async () => {
    await Promise.all(
      members.map((m) =>
        callAdapter(io.storage.kind, 'deleteSnapshot', () => io.storage.deleteSnapshot(m.volume, m.snapshot, io.token())).catch((error: unknown) => {
          if (!isDrError(error, 'E_NOT_FOUND')) throw error
        }),
      ),
    )
    return null
  })
  await ctx.step('uncatalog', async () => {
    const decided = await catalog.execute((state) => decideRemoveSnapshot(state, input.id))
    if (decided.length > 0) events.emit('volume.catalogUpdated', 'info', { ...where, change: 'removed' })
    return null
  })
  await ctx.step('reap-retired', async () => {
    const retired = unreferencedRetired(catalog.state, input.site, input.volume)
    for (const volume of retired) await destroyConstituent(io, volume)
    await catalog.execute((state) => decideForgetRetired(state, input.site, input.volume, retired))
    return null
  })
  return null
}

/**
 * Refuses (`E_PRECONDITION`, with `holds`) to delete an overall snapshot while a member snapshot is held — a
 * replication base. A member snapshot that is gone already holds nothing.
 *
 * @public
 */
export async function requireUnheld(storage: StoragePort, entry: SnapshotEntry, where: Readonly<Record<string, string>>): Promise<void> {
  for (const member of entry.members) {
    const info = await callAdapter(storage.kind, 'snapshotInfo', () => storage.snapshotInfo(member.volume, member.snapshot)).catch(() => undefined)
    if (info !== undefined && info.holds.length > 0) {
      throw new DrError('E_PRECONDITION', `member snapshot ${member.volume}@${member.snapshot} is held by ${info.holds.join(', ')}`, { ...where, holds: info.holds })
    }
  }
}
