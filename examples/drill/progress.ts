import { SingleBar, Presets } from 'cli-progress'
import type { DrillWorld } from './sites.js'

const size = (bytes: number): string => (bytes < 2 ** 20 ? `${Math.round(bytes / 1024)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`)

/**
 * A progress bar for a transfer between the sites, on stderr, redrawn every 100 ms from what the WAN links have
 * carried since it started against what there is to send: the changed bytes of the delta sets cut since it started
 * (`mirror.deltaSetCut`) plus `expectedBytes` for a transfer that announces no cut (an expandable volume's
 * snapshot). Silent when the world does not show progress (the `--json` mode).
 */
export class TransferProgress {
  readonly #bar: SingleBar | undefined
  readonly #timer: NodeJS.Timeout | undefined
  readonly #sent: () => number
  readonly #expected: () => number

  constructor(world: DrillWorld, label: string, expectedBytes = 0) {
    const wire = world.wireBytes()
    const cut = world.cutBytes()
    this.#sent = () => world.wireBytes() - wire
    this.#expected = () => world.cutBytes() - cut + expectedBytes
    if (!world.showProgress) return
    this.#bar = new SingleBar(
      {
        format: `  ${label.padEnd(22)} [{bar}] {percentage}% | {sent} on the wire of {expected} to send`,
        stream: process.stderr,
        noTTYOutput: true,
        notTTYSchedule: 250,
        hideCursor: true,
      },
      Presets.shades_classic,
    )
    this.#bar.start(1, 0, this.#payload())
    this.#timer = setInterval(() => this.#draw(), 100)
  }

  /** The transfer is over: the bar shows what was carried, complete. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    const sent = this.#sent()
    this.#bar?.setTotal(Math.max(1, sent))
    this.#bar?.update(Math.max(1, sent), this.#payload())
    this.#bar?.stop()
  }

  /** Runs `transfer` under the bar, stopping it however the transfer ends. */
  async around<T>(transfer: () => Promise<T>): Promise<T> {
    try {
      return await transfer()
    } finally {
      this.stop()
    }
  }

  #draw(): void {
    const sent = this.#sent()
    this.#bar?.setTotal(Math.max(1, this.#expected(), sent))
    this.#bar?.update(sent, this.#payload())
  }

  #payload(): { sent: string; expected: string } {
    return { sent: size(this.#sent()), expected: size(this.#expected()) }
  }
}
