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

/** The function a suite calls once per case. */
export type Report = (result: BenchCase) => void

/** What every suite file `bench/<suite>.ts` exports. */
export interface BenchSuite {
  run(report: Report): Promise<void>
}

const round = (value: number): number => (Number.isFinite(value) ? Number(value.toPrecision(6)) : value)

/**
 * A {@link Report} for `suite` that completes each case into a {@link BenchResult}, prints it as one JSON line
 * on stdout and hands it to `collect`.
 */
export function createReporter(suite: string, collect: (result: BenchResult) => void = () => undefined): Report {
  return (measured) => {
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
    collect(result)
  }
}

/** Runs `work` once and returns its result with the wall time it took, in milliseconds. */
export async function timed<T>(work: () => Promise<T>): Promise<{ readonly ms: number; readonly result: T }> {
  const start = process.hrtime.bigint()
  const result = await work()
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, result }
}
