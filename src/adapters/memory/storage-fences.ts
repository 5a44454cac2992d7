/**
 * The I/O fence of one volume. I/O enters before it touches the volume and leaves when it is done. While the
 * volume is fenced, entering waits; lifting the fence admits the waiting I/O in arrival order. Fencing resolves
 * once the I/O admitted before it has left.
 */
export class IoGate {
  #fenced = false
  #inFlight = 0
  #waiting: Array<() => void> = []
  #drained: Array<() => void> = []

  /** True while the fence is up. */
  get fenced(): boolean {
    return this.#fenced
  }

  /**
   * Admits one I/O: at once when unfenced, otherwise when the fence is lifted, after the I/O that arrived before
   * it. Every admitted I/O must call {@link IoGate.leave} exactly once.
   */
  enter(): Promise<void> {
    if (!this.#fenced) {
      this.#inFlight++
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      this.#waiting.push(() => {
        this.#inFlight++
        resolve()
      })
    })
  }

  /** Marks one admitted I/O as finished. */
  leave(): void {
    this.#inFlight--
    if (this.#inFlight > 0) return
    const drained = this.#drained
    this.#drained = []
    for (const resolve of drained) resolve()
  }

  /** Raises the fence; resolves once the I/O admitted before it has finished. */
  fence(): Promise<void> {
    this.#fenced = true
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise<void>((resolve) => this.#drained.push(resolve))
  }

  /** Lifts the fence and admits the waiting I/O in arrival order. */
  unfence(): void {
    this.#fenced = false
    const waiting = this.#waiting
    this.#waiting = []
    for (const admit of waiting) admit()
  }
}
