import { mirrorPromoted, type MirrorControl, type MirrorDescription, type MirrorSide } from './mirror-control.js'

interface Held {
  holders: number
  description: Promise<MirrorDescription> | undefined
  promotion: Promise<boolean> | undefined
  promoted: boolean
  /** Destination shares known to exist, by `site/share`, with their rights. */
  readonly shares: Map<string, readonly ('read' | 'write')[]>
}

/**
 * What the failovers of one coordinator know about their mirrors. While failovers of a mirror run (each holds it),
 * the mirror is described once for all of them, and once one of them has promoted it (or found it promoted) the
 * others skip the mirror calls altogether; a destination share one of them created or found is not looked for
 * again. When the last of them ends the knowledge is dropped, so a later failover reads the mirror and its
 * shares afresh: the mirror may have been failed back meanwhile, a share deleted.
 *
 * @public
 */
export class MirrorStates {
  readonly #control: MirrorControl
  readonly #held = new Map<string, Held>()

  constructor(control: MirrorControl) {
    this.#control = control
  }

  /** Keeps what is learnt about `mirrorId` until the returned function is called (holds nest). */
  hold(mirrorId: string): () => void {
    let held = this.#held.get(mirrorId)
    if (held === undefined) {
      held = { holders: 0, description: undefined, promotion: undefined, promoted: false, shares: new Map() }
      this.#held.set(mirrorId, held)
    }
    const entry = held
    entry.holders += 1
    let released = false
    return () => {
      if (released) return
      released = true
      entry.holders -= 1
      if (entry.holders === 0 && this.#held.get(mirrorId) === entry) this.#held.delete(mirrorId)
    }
  }

  /** The mirror's description: read once while it is held, afresh otherwise. */
  describe(mirrorId: string): Promise<MirrorDescription> {
    const held = this.#held.get(mirrorId)
    if (held === undefined) return this.#control.describe(mirrorId)
    if (held.description === undefined) {
      const reading = this.#control.describe(mirrorId)
      held.description = reading
      reading.catch(() => {
        if (held.description === reading) held.description = undefined
      })
    }
    return held.description
  }

  /** True when a failover of this coordinator has promoted the mirror (or found it promoted) while it is held. */
  knownPromoted(mirrorId: string): boolean {
    return this.#held.get(mirrorId)?.promoted === true
  }

  /** The rights of destination share `key` (`site/share`) if a failover of this held mirror created or found it. */
  knownShare(mirrorId: string, key: string): readonly ('read' | 'write')[] | undefined {
    return this.#held.get(mirrorId)?.shares.get(key)
  }

  /** Remembers, while the mirror is held, that destination share `key` exists with `access`. */
  rememberShare(mirrorId: string, key: string, access: readonly ('read' | 'write')[]): void {
    this.#held.get(mirrorId)?.shares.set(key, access)
  }

  /**
   * Fails the mirror over to `destination` unless it already is (found by a description, or known from another
   * failover of this coordinator). Concurrent callers share one attempt. Resolves with true only for the caller
   * whose call promoted it.
   */
  async promote(mirrorId: string, destination: MirrorSide, mode: 'sync' | 'default' | 'now'): Promise<boolean> {
    const held = this.#held.get(mirrorId)
    if (held?.promoted === true) return false
    if (held?.promotion !== undefined) {
      await held.promotion
      return false
    }
    const promotion = (async (): Promise<boolean> => {
      if (mirrorPromoted(await this.describe(mirrorId), destination)) return false
      await this.#control.failover(mirrorId, { mode })
      return true
    })()
    if (held !== undefined) held.promotion = promotion
    try {
      const promoted = await promotion
      if (held !== undefined) held.promoted = true
      return promoted
    } finally {
      if (held !== undefined && held.promotion === promotion) held.promotion = undefined
    }
  }
}
