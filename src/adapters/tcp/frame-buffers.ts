import { Buffer } from 'node:buffer'
import { BufferPool } from '../../kernel/buffer-pool.js'

/** Received frames at least this large are assembled in pooled buffers; smaller ones in new ones. */
const POOLED_FRAME_BYTES = 64 * 1024

/** Bytes of received-frame buffers kept for reuse, for every tcp channel of the process together. */
const IDLE_FRAME_BYTES = 16 * 1024 * 1024

const pool = new BufferPool(IDLE_FRAME_BYTES)
const releases = new WeakMap<Uint8Array, () => void>()

/**
 * A buffer to assemble a received frame of `size` bytes in: from the pool when the frame is large (a chunk of a
 * delta set), so a channel whose consumer gives its frames back ({@link releaseFrame}) receives without touching
 * new memory; a new one otherwise.
 */
export function frameBuffer(size: number): Buffer {
  if (size < POOLED_FRAME_BYTES) return Buffer.allocUnsafe(size)
  const { bytes, release } = pool.take(size)
  const frame = Buffer.from(bytes.buffer, bytes.byteOffset, size)
  releases.set(frame, release)
  return frame
}

/** Gives a frame made by {@link frameBuffer} back to the pool (anything else, or a second call, is ignored). */
export function releaseFrame(frame: Uint8Array): void {
  const release = releases.get(frame)
  if (release === undefined) return
  releases.delete(frame)
  release()
}
