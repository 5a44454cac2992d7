/** One check the drill made, byte for byte or state by state. */
export interface Verification {
  readonly phase: string
  readonly what: string
  readonly ok: boolean
}

/** What the drill measured; a value is null when the phase that measures it did not run. */
export interface DrillMetrics {
  /** Data loss window at the failover: age of the newest delta set west had applied when east was lost. */
  rpoSeconds: number | null
  /** From the decision to fail over to the last service running again at west. */
  rtoSeconds: number | null
  /** Bytes the mirror put on the wire (through the WAN links), initial copy included. */
  bytesSent: number
  /** Longest I/O fence window of a consistency-group snapshot. */
  fenceWindowMs: number | null
  /** Freeze window of the non-disruptive restore: first held I/O to thaw. */
  freezeWindowMs: number | null
}

/** The drill's outcome: every verification, the metrics, and the timeline of phases. */
export class DrillReport {
  readonly verifications: Verification[] = []
  readonly phases: Array<{ readonly name: string; readonly ms: number }> = []
  readonly metrics: DrillMetrics = { rpoSeconds: null, rtoSeconds: null, bytesSent: 0, fenceWindowMs: null, freezeWindowMs: null }
  readonly #log: (line: string) => void

  constructor(log: (line: string) => void) {
    this.#log = log
  }

  /** Records a check; a failed check does not stop the drill, it fails the verdict. */
  verify(phase: string, what: string, ok: boolean): void {
    this.verifications.push({ phase, what, ok })
    this.#log(`  ${ok ? '✔' : '✘'} ${what}`)
  }

  /** Runs one phase, timing it. */
  async phase<T>(name: string, run: () => Promise<T>): Promise<T> {
    this.#log(`\n▶ ${name}`)
    const started = performance.now()
    try {
      return await run()
    } finally {
      this.phases.push({ name, ms: Math.round(performance.now() - started) })
    }
  }

  get passed(): boolean {
    return this.verifications.length > 0 && this.verifications.every((v) => v.ok)
  }

  toJSON(): Record<string, unknown> {
    return { passed: this.passed, metrics: this.metrics, phases: this.phases, verifications: this.verifications }
  }

  /** The closing summary for a terminal. */
  summary(): string {
    const m = this.metrics
    const show = (value: number | null, unit: string, digits = 2) => (value === null ? 'not measured' : `${value.toFixed(digits)} ${unit}`)
    const failed = this.verifications.filter((v) => !v.ok)
    return [
      '',
      '── DR drill report ─────────────────────────────',
      `  RPO achieved      ${show(m.rpoSeconds, 's')}`,
      `  RTO achieved      ${show(m.rtoSeconds, 's')}`,
      `  bytes sent        ${m.bytesSent.toLocaleString('en-US')} B`,
      `  fence window      ${show(m.fenceWindowMs, 'ms', 0)}`,
      `  freeze window     ${show(m.freezeWindowMs, 'ms', 0)}`,
      `  verifications     ${this.verifications.length - failed.length} of ${this.verifications.length} passed`,
      ...failed.map((v) => `    ✘ [${v.phase}] ${v.what}`),
      '',
      this.passed ? 'verdict: every verification passed — the data was verified byte for byte at each step' : 'verdict: VERIFICATION FAILED',
    ].join('\n')
  }
}
