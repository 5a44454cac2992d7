/**
 * Runs submitted tasks with at most `limit` running at once, in submission order. Probes and failovers go
 * through one, so thousands of link points never mean thousands of simultaneous adapter calls.
 *
 * @public
 */
export class TaskPool {
  readonly #limit: number
  readonly #waiting: Array<() => void> = []
  readonly #idle: Array<() => void> = []
  #active = 0

  /** @param limit - how many tasks may run at once (at least 1) */
  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit))
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active
  }

  /** Tasks waiting for a free slot. */
  get queued(): number {
    return this.#waiting.length
  }

  /** Runs `work` once a slot is free; resolves or rejects with its outcome. */
  async submit<T>(work: () => Promise<T>): Promise<T> {
    await this.#acquire()
    try {
      return await work()
    } finally {
      this.#release()
    }
  }

  /**
   * Called from inside a submitted task: gives its slot to the next task while `wait` is pending (a wait that
   * is not work, such as a coalesced write shared by many tasks), then takes a slot again.
   */
  async outside<T>(wait: () => Promise<T>): Promise<T> {
    this.#release()
    try {
      return await wait()
    } finally {
      await this.#acquire()
    }
  }

  async #acquire(): Promise<void> {
    if (this.#active >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#active++
  }

  #release(): void {
    const next = this.#waiting.shift()
    if (next !== undefined) next()
    else {
      this.#active--
      if (this.#active === 0) for (const resolve of this.#idle.splice(0)) resolve()
    }
  }

  /** Resolves once nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve()
    return new Promise<void>((resolve) => this.#idle.push(resolve))
  }
}

/**
 * Lets concurrent callers of the same key share one run of the work: while a run for `key` is in flight, later
 * callers get its outcome instead of starting another. Used so that many links failing over together create
 * their shared destination share once and fail their shared mirror over once.
 *
 * @public
 */
export class SingleFlight {
  readonly #inFlight = new Map<string, Promise<unknown>>()

  /** Runs `work` for `key`, or joins the run already in flight (`joined` tells which). */
  async run<T>(key: string, work: () => Promise<T>): Promise<{ readonly value: T; readonly joined: boolean }> {
    const existing = this.#inFlight.get(key)
    if (existing !== undefined) return { value: (await existing) as T, joined: true }
    const started = work().finally(() => this.#inFlight.delete(key))
    this.#inFlight.set(key, started)
    return { value: await started, joined: false }
  }
}
