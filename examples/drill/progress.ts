import { SingleBar, Presets } from 'cli-progress'

/** A progress bar for a long transfer, on stderr; silent when `enabled` is false (the `--json` mode). */
export class TransferProgress {
  readonly #bar: SingleBar | undefined

  constructor(label: string, totalBytes: number, enabled: boolean) {
    if (!enabled) return
    this.#bar = new SingleBar(
      { format: `  ${label} [{bar}] {percentage}% | {value}/{total} MiB`, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 1000, hideCursor: true },
      Presets.shades_classic,
    )
    this.#bar.start(Math.max(1, Math.round(totalBytes / 2 ** 20)), 0)
  }

  update(bytes: number): void {
    this.#bar?.update(Math.round(bytes / 2 ** 20))
  }

  stop(): void {
    this.#bar?.stop()
  }
}
