import { describe, expect, it } from 'vitest'
import { BufferPool } from '../../src/kernel/buffer-pool.js'

describe('buffer pool', () => {
  it('hands a released buffer out again for a frame that fits, and allocates for one that does not', () => {
    const buffers = new BufferPool(1024 * 1024)
    const first = buffers.take(100_000)
    expect(first.bytes.length).toBe(100_000)
    first.bytes.fill(7)
    first.release()
    expect(buffers.idleBytes).toBeGreaterThanOrEqual(100_000)
    const again = buffers.take(90_000)
    expect(again.bytes.buffer, 'the same memory, reused').toBe(first.bytes.buffer)
    expect(buffers.idleBytes).toBe(0)
    const bigger = buffers.take(300_000)
    expect(bigger.bytes.buffer).not.toBe(first.bytes.buffer)
    expect(bigger.bytes.length).toBe(300_000)
  })

  it('keeps at most its idle limit, and a second release of the same buffer changes nothing', () => {
    const buffers = new BufferPool(200_000)
    const taken = [buffers.take(120_000), buffers.take(120_000)]
    for (const buffer of taken) buffer.release()
    const kept = buffers.idleBytes
    expect(kept).toBeLessThanOrEqual(200_000)
    expect(kept).toBeGreaterThan(0)
    taken[0]!.release()
    taken[1]!.release()
    expect(buffers.idleBytes).toBe(kept)
  })

  it('hands out an empty buffer for an empty request without touching what it keeps', () => {
    const buffers = new BufferPool(1024 * 1024)
    buffers.take(70_000).release()
    const kept = buffers.idleBytes
    const empty = buffers.take(0)
    expect(empty.bytes.length).toBe(0)
    expect(buffers.idleBytes, 'no kept buffer was taken for it').toBe(kept)
    empty.release()
    expect(buffers.idleBytes).toBe(kept)
  })
})
