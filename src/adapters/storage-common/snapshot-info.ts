import type { SnapshotInfo } from '../../ports/storage.js'

/** What a storage adapter keeps of a snapshot that its port description shows. */
export interface SnapshotFields {
  readonly name: string
  readonly createdAt: number
  readonly sizeBytes: number
  readonly labels: Readonly<Record<string, string>>
  readonly holds: ReadonlySet<string>
}

/**
 * A snapshot of `volume` as the storage port describes it: a fresh object the caller may keep, labels copied
 * and holds sorted.
 */
export function describeSnapshot(volume: { readonly name: string }, snapshot: SnapshotFields): SnapshotInfo {
  return {
    volume: volume.name,
    name: snapshot.name,
    createdAt: snapshot.createdAt,
    sizeBytes: snapshot.sizeBytes,
    labels: { ...snapshot.labels },
    holds: [...snapshot.holds].sort(),
  }
}
