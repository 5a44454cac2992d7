import { isDrError, toDrError } from '../../kernel/errors.js'
import type { ChangedBlocks } from '../../ports/storage.js'
import { deltaSetSnapshots, retainDeltaSets, store, type AgentContext } from './agent-context.js'
import { MIRROR_LABEL, deltaSetSnapshot } from './naming.js'
import type { AttachBase, CutPolicy } from './session-record.js'

/**
 * One cut of the source: delta set `n` is what changed from snapshot `baseName` (delta set `baseN`; null for a
 * full copy) to snapshot `name`, cut at `cutAt`.
 *
 * @public
 */
export interface Cut {
  readonly n: number
  readonly name: string
  readonly baseN: number | null
  readonly baseName: string | null
  readonly cutAt: number
}

/** Why a cut was taken. */
export type CutTrigger = 'timeout' | 'highWaterMark' | 'manual' | 'final' | 'initial'

/** How often a failed unfence is retried (with doubling backoff) before `mirror.unfenceFailed` is emitted. */
const UNFENCE_ATTEMPTS = 5
const UNFENCE_FIRST_DELAY_MS = 50
const UNFENCE_MAX_DELAY_MS = 5_000
/** How many cuts keep their changed-block list in memory for the sender (the newest ones). */
const CACHED_CHANGES = 4

/**
 * The source's delta sets as storage snapshots: cutting (fence, snapshot `ds-n`, unfence — a consistent point
 * that costs O(1) whatever the volume size, so a block written many times is sent once with its value at the
 * cut), the cut triggers (timeout and high-water mark of changed bytes, probed on the kernel clock), and
 * retention (the newest delta set the destination played back is held as the base; older cuts are deleted;
 * unacknowledged cuts are never deleted). A cut's changed blocks are listed once, when it is cut: its size is
 * kept for status and its block list for the sender. An unfence that fails is retried with backoff, reported as
 * `mirror.unfenceFailed` when it keeps failing, and retried until it succeeds: a cut never leaves the volume
 * fenced.
 *
 * @public
 */
export class CutLog {
  readonly #ctx: AgentContext
  readonly #session: string
  readonly #volume: string
  readonly #policy: CutPolicy
  readonly #epoch: number
  readonly #onCut: (cut: Cut, trigger: CutTrigger, changedBytes: number) => void
  #base: AttachBase
  #baseCutAt: number | null = null
  #cuts: Cut[] = []
  #serial: Promise<unknown> = Promise.resolve()
  #cancelTimeout: (() => void) | undefined
  #cancelProbe: (() => void) | undefined
  #running = false
  #lastCutAt: number
  /** Data bytes of each cut, computed once. */
  readonly #bytes = new Map<number, number>()
  /** The changed blocks of the newest cuts, listed at cut time, for the sender. */
  readonly #changes = new Map<number, ChangedBlocks>()
  /** An unfence still being retried in the background after `mirror.unfenceFailed`. */
  #unfencing: Promise<void> | undefined

  private constructor(
    ctx: AgentContext,
    session: string,
    volume: string,
    policy: CutPolicy,
    epoch: number,
    base: AttachBase,
    onCut: (cut: Cut, trigger: CutTrigger, changedBytes: number) => void,
  ) {
    this.#ctx = ctx
    this.#session = session
    this.#volume = volume
    this.#policy = policy
    this.#epoch = epoch
    this.#base = base
    this.#onCut = onCut
    this.#lastCutAt = ctx.clock.now()
  }

  /** Reads the session's cuts back from the volume's snapshots (those after the attach base). */
  static async open(options: {
    ctx: AgentContext
    session: string
    volume: string
    policy: CutPolicy
    epoch: number
    base: AttachBase
    onCut: (cut: Cut, trigger: CutTrigger, changedBytes: number) => void
  }): Promise<CutLog> {
    const log = new CutLog(options.ctx, options.session, options.volume, options.policy, options.epoch, options.base, options.onCut)
    for (const snap of await deltaSetSnapshots(options.ctx, options.volume, options.session)) {
      if (options.base !== null && snap.info.name === options.base.snapshot) log.#baseCutAt = Number(snap.info.labels[MIRROR_LABEL.cutAt] ?? snap.info.createdAt)
      if (snap.info.labels[MIRROR_LABEL.kind] !== 'cut' || Number(snap.info.labels[MIRROR_LABEL.epoch]) !== options.epoch) continue
      if (options.base !== null && snap.n <= options.base.n) continue
      const baseName = snap.info.labels[MIRROR_LABEL.base] ?? ''
      const baseN = snap.info.labels[MIRROR_LABEL.baseDeltaSet] ?? ''
      log.#cuts.push({
        n: snap.n,
        name: snap.info.name,
        baseName: baseName === '' ? null : baseName,
        baseN: baseN === '' ? null : Number(baseN),
        cutAt: Number(snap.info.labels[MIRROR_LABEL.cutAt] ?? snap.info.createdAt),
      })
    }
    const last = log.#cuts[log.#cuts.length - 1]
    if (last !== undefined) log.#lastCutAt = last.cutAt
    return log
  }

  /** Cuts not yet known to be played back at the destination, ascending. */
  get cuts(): readonly Cut[] {
    return this.#cuts
  }

  /** The newest cut, if any. */
  get last(): Cut | undefined {
    return this.#cuts[this.#cuts.length - 1]
  }

  /** The newest cut, including the base once everything was played back (null before the first cut). */
  get newest(): { readonly n: number; readonly cutAt: number | null } | null {
    const last = this.last
    if (last !== undefined) return { n: last.n, cutAt: last.cutAt }
    return this.#base === null ? null : { n: this.#base.n, cutAt: this.#baseCutAt }
  }

  /** The snapshot the next cut is based on (the newest cut, else the attach base), or null. */
  get head(): { readonly n: number; readonly name: string } | null {
    const last = this.last
    if (last !== undefined) return { n: last.n, name: last.name }
    return this.#base === null ? null : { n: this.#base.n, name: this.#base.snapshot }
  }

  /** Starts the timeout and high-water-mark triggers; cuts the initial copy at once when there is nothing yet. */
  start(): void {
    if (this.#running) return
    this.#running = true
    if (this.head === null) void this.cut('initial').catch(() => undefined)
    this.#armTimeout()
    this.#armProbe()
  }

  /** Stops the triggers and waits for a cut in progress. */
  async stop(): Promise<void> {
    this.#running = false
    this.#cancelTimeout?.()
    this.#cancelProbe?.()
    await this.#serial.catch(() => undefined)
  }

  /** Cuts delta set head+1 now: fence, snapshot, unfence. Resolves with the cut. */
  cut(trigger: CutTrigger): Promise<Cut> {
    const run = this.#serial.then(() => this.#cut(trigger))
    this.#serial = run.catch(() => undefined)
    return run
  }

  /** Changed bytes between the newest cut and the live volume (what the next cut would carry). */
  async pendingBytes(): Promise<number> {
    const head = this.head
    const changed = await store(this.#ctx, 'changedBlocks', (s) => s.changedBlocks(this.#volume, head?.name ?? null, 'live'))
    return changed.blocks.length * changed.blockSize
  }

  /** Data bytes of cut `cut` (changed blocks between its base and itself), listed once and then remembered. */
  async bytesOf(cut: Cut): Promise<number> {
    const known = this.#bytes.get(cut.n)
    if (known !== undefined) return known
    const changed = await this.changesOf(cut)
    return this.#bytes.get(cut.n) ?? dataBytes(changed)
  }

  /** Data bytes of the cuts after delta set `played` (cut, not yet played back at the destination). */
  async backlogBytes(played: number | null): Promise<number> {
    let bytes = 0
    for (const cut of this.#cuts) if (cut.n > (played ?? -1)) bytes += await this.bytesOf(cut)
    return bytes
  }

  /** The blocks cut `cut` changed since its base: the list taken at cut time when it is still kept. */
  async changesOf(cut: Cut): Promise<ChangedBlocks> {
    const kept = this.#changes.get(cut.n)
    if (kept !== undefined) return kept
    const changed = await store(this.#ctx, 'changedBlocks', (s) => s.changedBlocks(this.#volume, cut.baseName, cut.name))
    this.#bytes.set(cut.n, dataBytes(changed))
    return changed
  }

  /** The destination played back delta set `n`: hold it as the base, delete older cuts. */
  async played(n: number): Promise<void> {
    const run = this.#serial.then(async () => {
      const cut = this.#cuts.find((c) => c.n === n)
      if (cut === undefined) return
      await retainDeltaSets(this.#ctx, this.#volume, this.#session, n)
      this.#base = { n, snapshot: cut.name }
      this.#baseCutAt = cut.cutAt
      this.#cuts = this.#cuts.filter((c) => c.n > n)
      for (const kept of [...this.#bytes.keys()]) if (kept <= n) this.#bytes.delete(kept)
      for (const kept of [...this.#changes.keys()]) if (kept <= n) this.#changes.delete(kept)
    })
    this.#serial = run.catch(() => undefined)
    await run
  }

  async #cut(trigger: CutTrigger): Promise<Cut> {
    const head = this.head
    const n = (head?.n ?? 0) + 1
    const name = deltaSetSnapshot(this.#session, n)
    const cutAt = this.#ctx.clock.now()
    const labels = {
      [MIRROR_LABEL.session]: this.#session,
      [MIRROR_LABEL.deltaSet]: String(n),
      [MIRROR_LABEL.base]: head?.name ?? '',
      [MIRROR_LABEL.baseDeltaSet]: head === null ? '' : String(head.n),
      [MIRROR_LABEL.epoch]: String(this.#epoch),
      [MIRROR_LABEL.cutAt]: String(cutAt),
      [MIRROR_LABEL.kind]: 'cut',
    }
    let fenced = false
    try {
      await store(this.#ctx, 'fence', (s) => s.fence(this.#volume, this.#ctx.token()))
      fenced = true
    } catch (error) {
      if (!isDrError(error, 'E_CONFLICT')) throw error
    }
    try {
      await store(this.#ctx, 'createSnapshot', (s) => s.createSnapshot(this.#volume, name, this.#ctx.token(), labels))
    } finally {
      if (fenced) await this.#unfence()
    }
    const cut: Cut = { n, name, baseN: head?.n ?? null, baseName: head?.name ?? null, cutAt }
    this.#cuts.push(cut)
    this.#lastCutAt = cutAt
    this.#armTimeout()
    const changed = await store(this.#ctx, 'changedBlocks', (s) => s.changedBlocks(this.#volume, cut.baseName, cut.name))
    this.#bytes.set(n, dataBytes(changed))
    this.#changes.set(n, changed)
    for (const kept of [...this.#changes.keys()].sort((a, b) => a - b).slice(0, -CACHED_CHANGES)) this.#changes.delete(kept)
    this.#onCut(cut, trigger, dataBytes(changed))
    return cut
  }

  /**
   * Lifts the cut's fence, retrying with doubling backoff. When it still fails, `mirror.unfenceFailed` is emitted
   * and the retries go on in the background (at most every {@link UNFENCE_MAX_DELAY_MS}) until it succeeds; the
   * cut itself stands (its snapshot is whole).
   */
  async #unfence(): Promise<void> {
    const attempt = async (): Promise<void> => store(this.#ctx, 'unfence', (s) => s.unfence(this.#volume, this.#ctx.token()))
    let delay = UNFENCE_FIRST_DELAY_MS
    for (let tried = 1; ; tried++) {
      try {
        return await attempt()
      } catch (error) {
        if (tried >= UNFENCE_ATTEMPTS) {
          const failure = toDrError(error)
          this.#ctx.events.emit('mirror.unfenceFailed', 'error', { id: this.#session, site: this.#ctx.site, volume: this.#volume, attempts: tried, code: failure.code, message: failure.message })
          this.#unfencing ??= this.#keepUnfencing(attempt, delay).finally(() => (this.#unfencing = undefined))
          return
        }
      }
      await this.#ctx.clock.sleep(delay)
      delay = Math.min(UNFENCE_MAX_DELAY_MS, delay * 2)
    }
  }

  async #keepUnfencing(attempt: () => Promise<void>, delay: number): Promise<void> {
    for (;;) {
      await this.#ctx.clock.sleep(delay)
      delay = Math.min(UNFENCE_MAX_DELAY_MS, delay * 2)
      try {
        return await attempt()
      } catch (error) {
        // A closed adapter or a deleted volume holds no fence any more; anything else: keep trying.
        if (isDrError(error, 'E_CLOSED') || isDrError(error, 'E_NOT_FOUND')) return
      }
    }
  }

  #armTimeout(): void {
    this.#cancelTimeout?.()
    if (!this.#running) return
    const due = Math.max(0, this.#lastCutAt + this.#policy.everyMs - this.#ctx.clock.now())
    this.#cancelTimeout = this.#ctx.clock.setTimer(due, () => {
      this.#cancelTimeout = undefined
      void this.cut('timeout').catch(() => this.#armTimeout())
    })
  }

  #armProbe(): void {
    this.#cancelProbe?.()
    if (!this.#running) return
    this.#cancelProbe = this.#ctx.clock.setTimer(this.#policy.probeMs, () => {
      this.#cancelProbe = undefined
      void this.#probe().finally(() => this.#armProbe())
    })
  }

  async #probe(): Promise<void> {
    if (!this.#running || this.head === null) return
    try {
      if ((await this.pendingBytes()) >= this.#policy.highWaterMarkBytes) await this.cut('highWaterMark')
    } catch {
      // The probe runs again at the next interval; a failing storage shows up in the cut and send paths.
    }
  }
}

/** Data bytes of a list of changed blocks (holes carry none). */
function dataBytes(changed: ChangedBlocks): number {
  return (changed.blocks.length - changed.holes.length) * changed.blockSize
}
