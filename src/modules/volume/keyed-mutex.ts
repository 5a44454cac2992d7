/**
 * An in-process mutual exclusion per key: `run(key, work)` starts `work` once every earlier `run` of the same key
 * has settled. The volume module serialises object operations per expandable volume with it, which — together
 * with the write order of a put and the fence order of a consistency group — is what keeps every stub of a
 * consistent snapshot pointing at an object that the snapshot holds.
 *
 * @public
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>()

  /** Runs `work` alone for `key` and resolves (or rejects) with its outcome. */
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release = (): void => undefined
    const mine = new Promise<void>((resolve) => (release = resolve))
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    await previous
    try {
      return await work()
    } finally {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
