import { DrError } from '../../kernel/errors.js'
import type { ChangedBlocks } from '../../ports/storage.js'
import type { BlockRun } from './protocol.js'
import { store, storeOptional, retainDeltaSets, type AgentContext } from './agent-context.js'
import { MIRROR_CONFIG, MIRROR_LABEL, deltaSetSnapshot } from './naming.js'

/**
 * Writes into a read-only replica on behalf of the mirror. The storage port has one writability flag for
 * everyone, so the agent opens an explicit, recorded **apply window**: it first records the window as a
 * configuration record on the replica (`drkit.mirror.window`), then makes the volume writable, writes, makes it
 * read-only again and only then removes the record. Anyone (tests, operators, a restarted agent) can therefore
 * tell a replica being played back from a second primary, and a window left open by a crash is rolled back on
 * restart.
 *
 * @public
 */
export class ReplicaWriter {
  readonly #ctx: AgentContext
  readonly #volume: string
  readonly #session: string
  #open = false

  constructor(ctx: AgentContext, volume: string, session: string) {
    this.#ctx = ctx
    this.#volume = volume
    this.#session = session
  }

  /** The replica volume. */
  get volume(): string {
    return this.#volume
  }

  /** True while this writer holds the window open. */
  get isOpen(): boolean {
    return this.#open
  }

  /** True when a window record is present on the replica (possibly left by a crash). */
  async windowRecorded(): Promise<boolean> {
    return (await store(this.#ctx, 'getConfig', (s) => s.getConfig(this.#volume, MIRROR_CONFIG.window))) !== undefined
  }

  /** Records the window for delta set `n`, then makes the replica writable. Idempotent. */
  async open(n: number, epoch: number): Promise<void> {
    if (this.#open) return
    await store(this.#ctx, 'putConfig', (s) => s.putConfig(this.#volume, MIRROR_CONFIG.window, { session: this.#session, deltaSet: n, epoch }, this.#ctx.token()))
    await store(this.#ctx, 'setWritable', (s) => s.setWritable(this.#volume, true, this.#ctx.token()))
    this.#open = true
  }

  /** Makes the replica read-only again, then removes the window record. Idempotent. */
  async close(): Promise<void> {
    await store(this.#ctx, 'setWritable', (s) => s.setWritable(this.#volume, false, this.#ctx.token()))
    await store(this.#ctx, 'deleteConfig', (s) => s.deleteConfig(this.#volume, MIRROR_CONFIG.window, this.#ctx.token()))
    this.#open = false
  }

  /** Writes data runs and zeroes hole runs. The window must be open. */
  async write(runs: readonly BlockRun[], blockSize: number): Promise<void> {
    if (!this.#open) throw new DrError('E_INTERNAL', `mirror: write to replica ${this.#volume} outside an apply window`, { volume: this.#volume })
    const { storage } = this.#ctx
    const needed = runs.reduce((max, run) => Math.max(max, (run.start + run.count) * blockSize), 0)
    await this.ensureSize(needed)
    await Promise.all(
      runs.map((run) =>
        run.data === null
          ? store(this.#ctx, 'trim', () => storage.trim(this.#volume, run.start * blockSize, run.count * blockSize, this.#ctx.token()))
          : store(this.#ctx, 'write', () => storage.write(this.#volume, run.start * blockSize, run.data as Uint8Array, this.#ctx.token())),
      ),
    )
  }

  /** Grows the replica to at least `bytes`. */
  async ensureSize(bytes: number): Promise<void> {
    const info = await store(this.#ctx, 'volumeInfo', (s) => s.volumeInfo(this.#volume))
    if (bytes <= info.sizeBytes) return
    const size = Math.ceil(bytes / info.blockSize) * info.blockSize
    await store(this.#ctx, 'resizeVolume', (s) => s.resizeVolume(this.#volume, size, this.#ctx.token()))
  }

  /** Sets the replica's size to exactly `bytes` (the source's size at the cut). */
  async resize(bytes: number): Promise<void> {
    const info = await store(this.#ctx, 'volumeInfo', (s) => s.volumeInfo(this.#volume))
    if (info.sizeBytes !== bytes) await store(this.#ctx, 'resizeVolume', (s) => s.resizeVolume(this.#volume, bytes, this.#ctx.token()))
  }

  /** Zeroes the whole replica (before a full copy). The window must be open. */
  async clear(): Promise<void> {
    const info = await store(this.#ctx, 'volumeInfo', (s) => s.volumeInfo(this.#volume))
    await store(this.#ctx, 'trim', (s) => s.trim(this.#volume, 0, info.sizeBytes, this.#ctx.token()))
  }

  /** What of the live replica differs from its delta-set snapshot `from` (null: from the empty volume). */
  async changedSince(from: number | null): Promise<ChangedBlocks> {
    const name = from === null ? null : deltaSetSnapshot(this.#session, from)
    return store(this.#ctx, 'changedBlocks', (s) => s.changedBlocks(this.#volume, name, 'live'))
  }

  /** Rolls the live replica back to its delta-set snapshot `n` (an interrupted or refused apply). */
  async rollback(n: number): Promise<void> {
    await store(this.#ctx, 'restoreSnapshot', (s) => s.restoreSnapshot(this.#volume, deltaSetSnapshot(this.#session, n), this.#ctx.token()))
  }

  /**
   * Records that delta set `n` is played back: the replica's snapshot `ds-n` (taken after the window is closed),
   * held as the new base, older delta-set snapshots deleted. Idempotent.
   */
  async commit(n: number, epoch: number, cutAt: number): Promise<void> {
    const name = deltaSetSnapshot(this.#session, n)
    const existing = await storeOptional(this.#ctx, 'snapshotInfo', (s) => s.snapshotInfo(this.#volume, name))
    if (existing === undefined) {
      const labels = { [MIRROR_LABEL.session]: this.#session, [MIRROR_LABEL.deltaSet]: String(n), [MIRROR_LABEL.epoch]: String(epoch), [MIRROR_LABEL.cutAt]: String(cutAt), [MIRROR_LABEL.kind]: 'applied' }
      await store(this.#ctx, 'createSnapshot', (s) => s.createSnapshot(this.#volume, name, this.#ctx.token(), labels))
    }
    await retainDeltaSets(this.#ctx, this.#volume, this.#session, n)
  }
}
