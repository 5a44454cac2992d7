/**
 * One check the drill made: `bytes` when data read back was compared byte for byte (SHA-256 of a whole volume or
 * disk, or `Buffer.equals` of objects and blocks), `state` when it checked what drkit or an adapter reports (a
 * referral, a placement, a mount, a mode).
 */
export interface Verification {
  readonly phase: string
  readonly kind: 'bytes' | 'state'
  readonly what: string
  readonly ok: boolean
}

/** What the drill measured; a value is null when the phase that measures it did not run. */
export interface DrillMetrics {
  /** Data loss window at the failover: age of the newest delta set west had applied when east was lost. */
  rpoSeconds: number | null
  /** From the moment east was lost to the last service running again at west (detection included). */
  rtoSeconds: number | null
  /** From the moment east was lost to the monitor declaring its share inaccessible (part of the RTO). */
  detectionSeconds: number | null
  /** Bytes carried by the WAN links between the sites, initial copies and control traffic included. */
  bytesSent: number
  /** Longest I/O fence window of a consistency-group snapshot. */
  fenceWindowMs: number | null
  /** Freeze window of the non-disruptive restore: first held I/O to thaw. */
  freezeWindowMs: number | null
}

/** How each metric was measured, printed with the report and included in its JSON. */
export const MEASUREMENT = {
  rpo: 'time between the cut of the newest delta set west had applied and the loss of east',
  rto: "wall time from the loss of east to the VM running at west and the expandable volume presented read-write, detection included: the system's monitor probes east's share every 250 ms (the policy's probe interval), and the policy declares the share inaccessible after 2 failed probes",
  bytesSent: 'bytes relayed by the loopback WAN links in both directions, counted by the relays',
} as const

/** The drill's outcome: every verification, the metrics, and the timeline of phases. */
export class DrillReport {
  readonly verifications: Verification[] = []
  readonly phases: Array<{ readonly name: string; readonly ms: number }> = []
  readonly metrics: DrillMetrics = { rpoSeconds: null, rtoSeconds: null, detectionSeconds: null, bytesSent: 0, fenceWindowMs: null, freezeWindowMs: null }
  readonly #log: (line: string) => void

  constructor(log: (line: string) => void) {
    this.#log = log
  }

  /** Records a byte-for-byte comparison of data; a failed check does not stop the drill, it fails the verdict. */
  bytes(phase: string, what: string, ok: boolean): void {
    this.#record({ phase, kind: 'bytes', what, ok })
  }

  /** Records a check of state (not of data bytes); a failed check fails the verdict. */
  state(phase: string, what: string, ok: boolean): void {
    this.#record({ phase, kind: 'state', what, ok })
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

  /** True when there was at least one check and every check passed. */
  get passed(): boolean {
    return this.verifications.length > 0 && this.verifications.every((v) => v.ok)
  }

  /** The report as `--json` prints it. */
  toJSON(): Record<string, unknown> {
    return { passed: this.passed, metrics: this.metrics, measurement: MEASUREMENT, phases: this.phases, verifications: this.verifications }
  }

  /** The closing summary for a terminal. */
  summary(): string {
    const m = this.metrics
    const show = (value: number | null, unit: string, digits = 2) => (value === null ? 'not measured' : `${value.toFixed(digits)} ${unit}`)
    const failed = this.verifications.filter((v) => !v.ok)
    const count = (kind: Verification['kind']) => this.verifications.filter((v) => v.kind === kind).length
    return [
      '',
      '── DR drill report ─────────────────────────────',
      `  RPO achieved      ${show(m.rpoSeconds, 's')}   (${MEASUREMENT.rpo})`,
      `  RTO achieved      ${show(m.rtoSeconds, 's')}   (loss of east → every service back at west; detection ${show(m.detectionSeconds, 's')})`,
      `  bytes sent        ${m.bytesSent.toLocaleString('en-US')} B`,
      `  fence window      ${show(m.fenceWindowMs, 'ms', 0)}`,
      `  freeze window     ${show(m.freezeWindowMs, 'ms', 0)}`,
      `  verifications     ${this.verifications.length - failed.length} of ${this.verifications.length} passed`,
      ...failed.map((v) => `    ✘ [${v.phase}] ${v.what}`),
      '',
      this.passed
        ? `verdict: every verification passed — ${count('bytes')} comparisons of data byte for byte (volumes, objects, disks, blocks) and ${count('state')} checks of state`
        : 'verdict: VERIFICATION FAILED',
    ].join('\n')
  }

  #record(check: Verification): void {
    this.verifications.push(check)
    this.#log(`  ${check.ok ? '✔' : '✘'} ${check.kind === 'bytes' ? '[bytes] ' : ''}${check.what}`)
  }
}
