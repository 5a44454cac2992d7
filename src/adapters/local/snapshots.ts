import { DrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import { decode } from '../../kernel/decode.js'
import type { ChangedBlocks, SnapshotInfo, VolumeInfo } from '../../ports/storage.js'
import { diffTrees, EMPTY_SLOT } from './block-map.js'
import { checkName, checkText, LabelsInput } from './inputs.js'
import type { LocalPool } from './local-pool.js'
import { describeSnapshot } from '../storage-common/snapshot-info.js'
import type { SnapshotState, VolumeState } from './pool-state.js'

function precondition(message: string, details: Record<string, unknown>): DrError {
  return new DrError('E_PRECONDITION', `local: ${message}`, { adapter: 'local', ...details })
}

function checkDeletable(pool: LocalPool, volume: VolumeState, snapshot: SnapshotState): void {
  const where = { volume: volume.name, snapshot: snapshot.name }
  if (snapshot.holds.size > 0) {
    throw precondition(`snapshot "${volume.name}@${snapshot.name}" is held (${[...snapshot.holds].join(', ')})`, {
      ...where,
      holds: [...snapshot.holds],
    })
  }
  const clones = pool.state.clonesOf(volume.name, snapshot.name)
  if (clones.length > 0) {
    throw precondition(`snapshot "${volume.name}@${snapshot.name}" has clones (${clones.join(', ')})`, { ...where, clones })
  }
}

/** Takes a snapshot: one more reference on the live map's root and a small log record, whatever the volume size. */
export async function createSnapshot(
  pool: LocalPool,
  volumeName: string,
  name: string,
  token: FenceToken,
  labels: Readonly<Record<string, string>> | undefined,
): Promise<SnapshotInfo> {
  pool.authorize(token, 'createSnapshot')
  checkName(name, 'snapshot name')
  const checkedLabels = decode(LabelsInput, labels ?? {}, 'snapshot labels')
  const volume = pool.state.volume(volumeName)
  if (volume.snapshots.has(name)) {
    throw new DrError('E_CONFLICT', `local: snapshot "${volumeName}@${name}" already exists`, { adapter: 'local', volume: volumeName, snapshot: name })
  }
  await pool.commit({ op: 'createSnapshot', volume: volumeName, name, createdAt: Date.now(), labels: { ...checkedLabels } })
  return describeSnapshot(volume, pool.state.snapshot(volumeName, name))
}

/** Deletes a snapshot unless held or cloned; slots only it referenced are freed once the change is durable. */
export async function deleteSnapshot(pool: LocalPool, volumeName: string, name: string, token: FenceToken): Promise<void> {
  pool.authorize(token, 'deleteSnapshot')
  const volume = pool.state.volume(volumeName)
  const snapshot = pool.state.snapshot(volumeName, name)
  checkDeletable(pool, volume, snapshot)
  await pool.exclusive(volume, () => {
    pool.currentSnapshot(volume, snapshot)
    checkDeletable(pool, volume, snapshot)
    return pool.commit({ op: 'deleteSnapshot', volume: volumeName, name })
  })
}

/** Rolls the live volume back to a snapshot (contents and size); later snapshots stay. */
export async function restoreSnapshot(pool: LocalPool, volumeName: string, name: string, token: FenceToken): Promise<void> {
  pool.authorize(token, 'restoreSnapshot')
  const volume = pool.state.volume(volumeName)
  const snapshot = pool.state.snapshot(volumeName, name)
  await pool.exclusive(volume, () => {
    pool.currentSnapshot(volume, snapshot)
    return pool.commit({ op: 'restoreSnapshot', volume: volumeName, name })
  })
}

/** Creates a writable volume sharing the snapshot's map (O(1)); its writes go to its own slots. */
export async function cloneSnapshot(pool: LocalPool, volumeName: string, name: string, cloneName: string, token: FenceToken): Promise<VolumeInfo> {
  pool.authorize(token, 'cloneSnapshot')
  checkName(cloneName, 'clone name')
  pool.state.snapshot(volumeName, name)
  if (pool.state.volumes.has(cloneName)) {
    throw new DrError('E_CONFLICT', `local: volume "${cloneName}" already exists`, { adapter: 'local', volume: cloneName })
  }
  await pool.commit({ op: 'cloneSnapshot', volume: volumeName, name, clone: cloneName, createdAt: Date.now() })
  return pool.state.describe(pool.state.volume(cloneName))
}

/** Adds or removes a hold tag (idempotent). */
export async function setHold(pool: LocalPool, volumeName: string, name: string, tag: string, held: boolean, token: FenceToken): Promise<void> {
  const operation = held ? 'holdSnapshot' : 'releaseSnapshot'
  pool.authorize(token, operation)
  checkText(tag, 'hold tag')
  const snapshot = pool.state.snapshot(volumeName, name)
  if (snapshot.holds.has(tag) === held) return
  await pool.commit({ op: operation, volume: volumeName, name, tag })
}

/**
 * The blocks that differ between two points of a volume, found by walking both block maps together and
 * skipping every page they share: the cost follows the pages that differ, not the volume size.
 */
export function changedBlocks(pool: LocalPool, volumeName: string, from: string | null, to: string): ChangedBlocks {
  const volume = pool.state.volume(volumeName)
  const fromRoot = from === null ? null : pool.state.snapshot(volumeName, from).root
  const target = to === 'live' ? volume : pool.state.snapshot(volumeName, to)
  const blocks: number[] = []
  const holes: number[] = []
  diffTrees(
    fromRoot,
    target.root,
    (block, slot) => {
      blocks.push(block)
      if (slot === EMPTY_SLOT) holes.push(block)
    },
    pool.state.stats,
  )
  return { volume: volumeName, from, to, blockSize: volume.blockSize, sizeBytes: target.sizeBytes, blocks, holes }
}
