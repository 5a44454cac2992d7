/**
 * One benchmark measurement as printed and stored: what was measured (`metric`, `value`, `unit`) and what it was
 * measured against in the same run (`baseline`, `baselineValue`), with `ratio = value / baselineValue`.
 */
export interface BenchResult {
  readonly suite: string
  readonly case: string
  readonly metric: string
  readonly value: number
  readonly unit: string
  readonly baseline: string
  readonly baselineValue: number
  readonly ratio: number
}

/** What a suite reports for one case; the runner adds `suite` and computes `ratio`. */
export type BenchCase = Omit<BenchResult, 'suite' | 'ratio'>

/**
 * A case a suite could not measure in this run — typically because its peer (rsync, say) is not installed — kept
 * in the results as a row that says so instead of being left out.
 */
export interface BenchSkip {
  readonly suite: string
  readonly case: string
  readonly metric: string
  readonly baseline: string
  readonly reason: string
}

/** A suite that threw: the runner records the error and goes on with the next suite. */
export interface BenchFailure {
  readonly suite: string
  readonly error: string
}

/**
 * What a suite calls once per case it measured, and `skip` once per case it could not measure (with the reason),
 * so that the results show the case as skipped rather than lose it.
 */
export interface Report {
  (result: BenchCase): void
  skip(skipped: Omit<BenchSkip, 'suite'>): void
}

/** What every suite file `bench/<suite>.ts` exports. */
export interface BenchSuite {
  run(report: Report): Promise<void>
}

const round = (value: number): number => (Number.isFinite(value) ? Number(value.toPrecision(6)) : value)

/** Where a {@link Report} hands what it completed: measured cases and skipped ones. */
export interface Collector {
  readonly result?: (result: BenchResult) => void
  readonly skip?: (skipped: BenchSkip) => void
}

/**
 * A {@link Report} for `suite` that completes each case into a {@link BenchResult} (or a {@link BenchSkip}), prints
 * it as one JSON line on stdout and hands it to `collect`.
 */
export function createReporter(suite: string, collect: Collector = {}): Report {
  const report = (measured: BenchCase): void => {
    const result: BenchResult = {
      suite,
      case: measured.case,
      metric: measured.metric,
      value: round(measured.value),
      unit: measured.unit,
      baseline: measured.baseline,
      baselineValue: round(measured.baselineValue),
      ratio: round(measured.value / measured.baselineValue),
    }
    process.stdout.write(`${JSON.stringify(result)}\n`)
    collect.result?.(result)
  }
  return Object.assign(report, {
    skip: (skipped: Omit<BenchSkip, 'suite'>): void => {
      const row: BenchSkip = { suite, ...skipped }
      process.stdout.write(`${JSON.stringify({ ...row, skipped: true })}\n`)
      collect.skip?.(row)
    },
  })
}

/** Runs `work` once and returns its result with the wall time it took, in milliseconds. */
export async function timed<T>(work: () => Promise<T>): Promise<{ readonly ms: number; readonly result: T }> {
  const start = process.hrtime.bigint()
  const result = await work()
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, result }
}
