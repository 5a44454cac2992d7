import assert from 'node:assert/strict'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import type { DrErrorCode } from '../kernel/errors.js'
import type { FenceToken } from '../kernel/fencing.js'
import type { StoragePort, VolumeInfo } from '../ports/storage.js'
import { withAdapter, type AdapterFactory, type ConformanceCase } from './conformance.js'

/** The block size every storage conformance volume uses (the smallest an adapter must support). */
export const BS = 4096

/** A fence token of the scope `conformance` (or `scope`) with `value`. */
export function token(value = 1, scope = 'conformance'): FenceToken {
  return { scope, value }
}

/** Builds one storage conformance case with a fresh adapter; `factory` is bound once per group. */
export type StorageCaseBuilder = (name: string, body: (storage: StoragePort) => Promise<void>) => ConformanceCase

/** Binds {@link withAdapter} to one factory, for the storage conformance groups. */
export function storageCases(factory: AdapterFactory<StoragePort>): StorageCaseBuilder {
  return (name, body) => withAdapter(factory, name, body)
}

/** Asserts that `promise` rejects with a drkit error of `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: DrErrorCode, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    const actual = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
    assert.equal(actual, code, `${what}: expected a rejection with ${code}, got ${String(actual)} (${String(error)})`)
    return true
  })
}

/** Deterministic pseudo-random bytes (mulberry32 of `seed`) with no zero byte, so data never reads as a hole. */
export function pattern(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let state = seed >>> 0
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff || 1
  }
  return out
}

/** A small deterministic generator of integers below `below`, so random cases replay identically. */
export function integers(seed: number): (below: number) => number {
  let state = seed >>> 0
  return (below) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return Math.floor((state / 2 ** 32) * below)
  }
}

/** A zero-filled array of `length` bytes. */
export function zeros(length: number): Uint8Array {
  return new Uint8Array(length)
}

/** Creates volume `name` of `blocks` blocks of {@link BS} bytes with token value 1. */
export function makeVolume(storage: StoragePort, name: string, blocks: number): Promise<VolumeInfo> {
  return storage.createVolume({ name, sizeBytes: blocks * BS, blockSize: BS }, token())
}

/** Writes one whole block `index` of `volume` with the pattern of `seed`; returns the data written. */
export async function writeBlock(storage: StoragePort, volume: string, index: number, seed: number): Promise<Uint8Array> {
  const data = pattern(seed, BS)
  await storage.write(volume, index * BS, data, token())
  return data
}

/** Asserts that `[offset, offset + expected.length)` of a volume (or snapshot) reads as `expected`. */
export async function assertReads(
  storage: StoragePort,
  volume: string,
  offset: number,
  expected: Uint8Array,
  what: string,
  snapshot?: string,
): Promise<void> {
  const actual = await storage.read(volume, offset, expected.length, snapshot === undefined ? undefined : { snapshot })
  assert.ok(actual instanceof Uint8Array, `${what}: read returns a Uint8Array`)
  assert.equal(actual.length, expected.length, `${what}: read length`)
  const at = actual.findIndex((byte, i) => byte !== expected[i])
  assert.equal(at, -1, `${what}: first differing byte at offset ${offset + at}`)
}

/** Lets queued callbacks, timers and pending adapter work run for a while (used to observe that I/O still waits). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await nextTurn()
  await sleep(20)
  for (let i = 0; i < 5; i++) await nextTurn()
}

/** A promise together with a flag that says whether it has settled yet. */
export interface Tracked<T> {
  readonly promise: Promise<T>
  settled(): boolean
}

/** Starts watching `promise` so a case can ask whether it has settled; rejections stay on `promise`. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  let done = false
  promise.then(
    () => {
      done = true
    },
    () => {
      done = true
    },
  )
  return { promise, settled: () => done }
}
