/**
 * One check of a conformance suite: a name that states the behaviour and an async body that throws (with
 * `node:assert`) when the adapter under test does not behave. Suites are plain lists of cases so they run
 * under any test runner: `for (const c of suite) it(c.name, c.run)`.
 *
 * @public
 */
export interface ConformanceCase {
  readonly name: string
  readonly run: () => Promise<void>
}

/**
 * Builds a fresh adapter instance for one case and disposes of it afterwards. Every case gets its own instance
 * so cases never depend on each other's leftovers.
 *
 * @public
 */
export interface AdapterFactory<A> {
  create(): Promise<A>
  dispose(adapter: A): Promise<void>
}

/**
 * Wraps each case body so that the adapter is created before and disposed of after it, even on failure.
 *
 * @public
 */
export function withAdapter<A>(
  factory: AdapterFactory<A>,
  name: string,
  body: (adapter: A) => Promise<void>,
): ConformanceCase {
  return {
    name,
    run: async () => {
      const adapter = await factory.create()
      try {
        await body(adapter)
      } finally {
        await factory.dispose(adapter)
      }
    },
  }
}
