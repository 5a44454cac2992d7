import { EMPTY_SLOT } from './block-map.js'

/** Most slots moved by one vectored read or write (well under the kernel's limit of buffers per call). */
const MAX_RUN = 256

/** A run of entries `[start, end)` of a slot list whose slots are consecutive. */
export interface SlotRun {
  readonly start: number
  readonly end: number
}

/**
 * Splits a list of slots into runs of consecutive slots (at most {@link MAX_RUN} long), skipping `EMPTY_SLOT`
 * entries: each run is one `preadv` or `pwritev` of the block file.
 */
export function slotRuns(slots: ArrayLike<number>): SlotRun[] {
  const found: SlotRun[] = []
  let i = 0
  while (i < slots.length) {
    if (slots[i] === EMPTY_SLOT) {
      i++
      continue
    }
    let j = i + 1
    while (j < slots.length && j - i < MAX_RUN && slots[j] === slots[j - 1]! + 1) j++
    found.push({ start: i, end: j })
    i = j
  }
  return found
}
