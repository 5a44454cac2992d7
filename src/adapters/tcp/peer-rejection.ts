import type { PeerRejection } from '../../ports/network.js'

/** The observers of a port's refused peers: each hears of every refusal, and a failing one stops no other. */
export class RejectionReporter {
  readonly #listeners = new Set<(rejection: PeerRejection) => void>()

  /** Adds `listener`; returns a function that removes it. */
  subscribe(listener: (rejection: PeerRejection) => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** Tells every listener about `rejection`. */
  report(rejection: PeerRejection): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(rejection)
      } catch {
        // A failing observer must not keep the other observers from hearing about the refusal.
      }
    }
  }
}
