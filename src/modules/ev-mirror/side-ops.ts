import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { SnapshotEntry } from '../volume/index.js'
import type { EvContext } from './context.js'

type SideRef = { readonly site: string; readonly volume: string }

/**
 * The hold tag that keeps the base snapshots of relationship `id`.
 *
 * @public
 */
export function holdTag(id: string): string {
  return `ev-mirror:${id}`
}

/**
 * Finds a snapshot by name in a volume's catalog.
 *
 * @public
 */
export async function snapshotNamed(cx: EvContext, side: SideRef, name: string): Promise<SnapshotEntry | undefined> {
  return (await cx.volumes.listSnapshots({ site: side.site, volume: side.volume })).find((s) => s.name === name)
}

/**
 * Makes every constituent of a side (retired ones left out) writable or read-only at the storage level.
 *
 * @public
 */
export async function setSideWritable(cx: EvContext, side: SideRef, writable: boolean): Promise<void> {
  const storage = cx.sites(side.site).storage
  for (const m of (await cx.record(side)).members.filter((x) => x.state !== 'retired')) {
    await callAdapter(storage.kind, 'setWritable', () => storage.setWritable(m.volume, writable, cx.token()))
  }
}

/** A member snapshot that is already gone is released (or unheld) already. */
export function ignoreMissing(error: unknown): void {
  if (!isDrError(error, 'E_NOT_FOUND')) throw error
}

/**
 * Adds (or removes) the relationship's hold on every member snapshot of `entry` on a side. Releasing a member
 * snapshot that no longer exists is not an error.
 *
 * @public
 */
export async function holdEntry(cx: EvContext, id: string, side: SideRef, entry: SnapshotEntry, hold: boolean): Promise<void> {
  const storage = cx.sites(side.site).storage
  for (const m of entry.members) {
    if (hold) await callAdapter(storage.kind, 'holdSnapshot', () => storage.holdSnapshot(m.volume, m.snapshot, holdTag(id), cx.token()))
    else await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(m.volume, m.snapshot, holdTag(id), cx.token())).catch(ignoreMissing)
  }
}

/**
 * Releases the relationship's hold on every member snapshot of a side's constituents (retired ones included)
 * except those of the `keep` snapshots: what a transfer that could not reach the side to release its old base
 * (or a compensation that could not) left behind is cleaned up by the next transfer that reaches it.
 *
 * @public
 */
export async function releaseStaleHolds(cx: EvContext, id: string, side: SideRef, keep: ReadonlyArray<SnapshotEntry | undefined>): Promise<void> {
  const storage = cx.sites(side.site).storage
  const tag = holdTag(id)
  const kept = new Set(keep.flatMap((entry) => entry?.members.map((m) => `${m.volume}@${m.snapshot}`) ?? []))
  for (const m of (await cx.record(side)).members) {
    const snapshots = await callAdapter(storage.kind, 'listSnapshots', () => storage.listSnapshots(m.volume))
    for (const snapshot of snapshots.filter((s) => s.holds.includes(tag) && !kept.has(`${m.volume}@${s.name}`))) {
      await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(m.volume, snapshot.name, tag, cx.token())).catch(ignoreMissing)
    }
  }
}
