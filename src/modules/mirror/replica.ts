import type { ChangedBlocks, RangeChange } from '../../ports/storage.js'
import type { BlockRun } from './protocol.js'
import { store, storeOptional, retainDeltaSets, type AgentContext } from './agent-context.js'
import { MIRROR_LABEL, deltaSetSnapshot } from './naming.js'

/**
 * The storage changes that apply block runs: data runs written, hole runs unmapped.
 *
 * @public
 */
export function runChanges(runs: readonly BlockRun[], blockSize: number): RangeChange[] {
  return runs.map((run) =>
    run.data === null ? { offset: run.start * blockSize, length: run.count * blockSize, hole: true as const } : { offset: run.start * blockSize, data: run.data },
  )
}

/**
 * Writes into a replica on behalf of the mirror. The replica stays read-only to every client the whole time: the
 * agent writes with `writeRanges(…, { replication: true })`, which only the replication engine uses, so no
 * application write can ever land in a replica and both sides of a relationship are never writable at once. The
 * replica's delta-set snapshots (`ds-n`) record what was applied; a partial apply (a crash, a refused delta set)
 * is rolled back to the last one.
 *
 * @public
 */
export class ReplicaWriter {
  readonly #ctx: AgentContext
  readonly #volume: string
  readonly #session: string
  #sizeBytes: number | undefined

  constructor(ctx: AgentContext, volume: string, session: string) {
    this.#ctx = ctx
    this.#volume = volume
    this.#session = session
  }

  /** The replica volume. */
  get volume(): string {
    return this.#volume
  }

  /**
   * Applies block runs (one storage call; the runs are at most one chunk or one batch). The runs' data must stay
   * unchanged until the returned promise settles: it is lent to the storage adapter.
   */
  async write(runs: readonly BlockRun[], blockSize: number): Promise<void> {
    if (runs.length === 0) return
    const needed = runs.reduce((max, run) => Math.max(max, (run.start + run.count) * blockSize), 0)
    await this.ensureSize(needed)
    const changes = runChanges(runs, blockSize)
    // Lent: the runs' data is a received frame the caller gives back only once this write settled.
    await store(this.#ctx, 'writeRanges', (s) => s.writeRanges(this.#volume, changes, this.#ctx.token(), { replication: true, lent: true }))
  }

  /** Grows the replica to at least `bytes`. */
  async ensureSize(bytes: number): Promise<void> {
    if (this.#sizeBytes !== undefined && bytes <= this.#sizeBytes) return
    const info = await store(this.#ctx, 'volumeInfo', (s) => s.volumeInfo(this.#volume))
    this.#sizeBytes = info.sizeBytes
    if (bytes <= info.sizeBytes) return
    const size = Math.ceil(bytes / info.blockSize) * info.blockSize
    this.#sizeBytes = (await store(this.#ctx, 'resizeVolume', (s) => s.resizeVolume(this.#volume, size, this.#ctx.token()))).sizeBytes
  }

  /** Sets the replica's size to exactly `bytes` (the source's size at the cut). */
  async resize(bytes: number): Promise<void> {
    if (this.#sizeBytes === bytes) return
    const info = await store(this.#ctx, 'volumeInfo', (s) => s.volumeInfo(this.#volume))
    this.#sizeBytes = info.sizeBytes === bytes ? bytes : (await store(this.#ctx, 'resizeVolume', (s) => s.resizeVolume(this.#volume, bytes, this.#ctx.token()))).sizeBytes
  }

  /** Unmaps the whole replica (before a full copy). */
  async clear(): Promise<void> {
    const info = await store(this.#ctx, 'volumeInfo', (s) => s.volumeInfo(this.#volume))
    this.#sizeBytes = info.sizeBytes
    if (info.sizeBytes === 0) return
    await store(this.#ctx, 'writeRanges', (s) => s.writeRanges(this.#volume, [{ offset: 0, length: info.sizeBytes, hole: true }], this.#ctx.token(), { replication: true }))
  }

  /** What of the live replica differs from its delta-set snapshot `from` (null: from the empty volume). */
  async changedSince(from: number | null): Promise<ChangedBlocks> {
    const name = from === null ? null : deltaSetSnapshot(this.#session, from)
    return store(this.#ctx, 'changedBlocks', (s) => s.changedBlocks(this.#volume, name, 'live'))
  }

  /** Rolls the live replica back to its delta-set snapshot `n` (an interrupted or refused apply). */
  async rollback(n: number): Promise<void> {
    this.#sizeBytes = undefined
    await store(this.#ctx, 'restoreSnapshot', (s) => s.restoreSnapshot(this.#volume, deltaSetSnapshot(this.#session, n), this.#ctx.token()))
  }

  /**
   * Records that delta set `n` is played back: the replica's snapshot `ds-n`, which readers switch to. Idempotent.
   * Retention (holding it as the base, deleting older ones) is {@link ReplicaWriter.retain}, off the critical path.
   */
  async commit(n: number, epoch: number, cutAt: number): Promise<void> {
    const name = deltaSetSnapshot(this.#session, n)
    const existing = await storeOptional(this.#ctx, 'snapshotInfo', (s) => s.snapshotInfo(this.#volume, name))
    if (existing !== undefined) return
    const labels = { [MIRROR_LABEL.session]: this.#session, [MIRROR_LABEL.deltaSet]: String(n), [MIRROR_LABEL.epoch]: String(epoch), [MIRROR_LABEL.cutAt]: String(cutAt), [MIRROR_LABEL.kind]: 'applied' }
    await store(this.#ctx, 'createSnapshot', (s) => s.createSnapshot(this.#volume, name, this.#ctx.token(), labels))
  }

  /** Holds `ds-n` as the base and deletes older delta-set snapshots. */
  async retain(n: number): Promise<void> {
    await retainDeltaSets(this.#ctx, this.#volume, this.#session, n)
  }
}
