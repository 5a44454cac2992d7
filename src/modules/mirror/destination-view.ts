import type { Cut } from './cut-log.js'
import type { PartialDeltaSet } from './destination.js'
import type { StateFrameValue } from './protocol.js'

/**
 * A delta set the source should send next: a cut, as an increment from its base or as a full copy.
 *
 * @public
 */
export interface SendPlan {
  readonly cut: Cut
  readonly full: boolean
}

/**
 * What the source knows of its destination: the last delta set played there, the complete ones waiting, the ones
 * partly received (each with the chunks durably stored), where the chain of increments stands on the current
 * channel, and the delta sets sent alongside a full copy on it. It is reset by each state frame (every
 * connection) and moved on by acknowledgements; from it and the source's cuts it plans what to send next.
 *
 * @public
 */
export class DestinationView {
  #played: number | null
  #complete = new Set<number>()
  #partials: PartialDeltaSet[] = []
  #alongside = new Set<number>()
  #position: number | null = null

  /** @param played - the base both sides hold when the session starts (null: nothing yet) */
  constructor(played: number | null) {
    this.#played = played
  }

  /** The last delta set known to be played at the destination. */
  get played(): number | null {
    return this.#played
  }

  /** The delta sets known to be complete (not yet played) at the destination, ascending. */
  get complete(): number[] {
    return [...this.#complete].sort((a, b) => a - b)
  }

  /** What the destination said when the channel opened: the state of every delta set it holds. */
  reset(state: StateFrameValue): void {
    this.#played = state.played
    this.#complete = new Set(state.complete)
    this.#partials = [...state.partials]
    this.#alongside = new Set()
    this.#position = state.played
  }

  /** Delta set `n` is complete at the destination (staged, not yet played). */
  completed(n: number): void {
    this.#complete.add(n)
  }

  /** Delta set `n` is played at the destination; returns true when that is news. */
  playedUpTo(n: number): boolean {
    for (const c of [...this.#complete]) if (c <= n) this.#complete.delete(c)
    if (this.#played !== null && n <= this.#played) return false
    this.#played = n
    return true
  }

  /** Delta set `n` was sent, in the chain (the destination's position moves to it) or alongside a full copy. */
  sent(n: number, alongside: boolean): void {
    if (alongside) this.#alongside.add(n)
    else this.#position = n
  }

  /** True when the destination holds delta set `n` completely (or it went alongside a full copy on this channel). */
  delivered(n: number): boolean {
    return this.#complete.has(n) || this.#alongside.has(n)
  }

  /** How many chunks of delta set `n` the destination holds, for a report. */
  chunksOf(n: number): number {
    return this.#partials.find((p) => p.n === n)?.received ?? 0
  }

  /** Takes what the destination holds of delta set `n` sent as `full` or not, to continue from it (once). */
  takePartial(n: number, full: boolean): PartialDeltaSet | undefined {
    const partial = this.#partials.find((p) => p.n === n && p.full === full)
    this.#partials = this.#partials.filter((p) => p !== partial)
    return partial
  }

  /**
   * What to send next from `cuts` (ascending): the first cut of the chain from the destination's position that it
   * lacks, else — when the chain breaks (the destination holds nothing the source still has) — a full copy of the
   * newest cut.
   */
  next(cuts: readonly Cut[]): SendPlan | undefined {
    let pos = this.#position
    for (;;) {
      const chained = cuts.find((c) => c.baseN === pos)
      if (chained === undefined) break
      if (!this.delivered(chained.n)) return { cut: chained, full: chained.baseN === null }
      pos = chained.n
    }
    const latest = cuts[cuts.length - 1]
    if (latest !== undefined && (pos === null || latest.n > pos)) return { cut: latest, full: true }
    return undefined
  }
}
