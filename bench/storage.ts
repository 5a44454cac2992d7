/**
 * Local storage adapter benchmarks, on a fresh pool under `os.tmpdir()` with fsync on (every acknowledged write
 * durable). Throughput cases run twice, alternating with their baselines, and report the best of each, since
 * the disk may be shared with other work.
 *
 * - `seq-write-1g`: MB/s writing a 1 GiB volume (64 KiB blocks) in 4 MiB writes, one at a time, against raw
 *   `fs` writes of the same bytes to a plain file, each followed by `fdatasync` (the physical limit at the same
 *   durability).
 * - `seq-write-1g-qd8`: the same with 8 writes in flight (group commit shares log batches), against the same
 *   raw baseline.
 * - `seq-read-1g`: MB/s reading the volume back in 4 MiB reads (every block checksummed), against raw `fs`
 *   reads of the plain file.
 * - `snapshot-create-16g`: median time to create a snapshot of a 16 GiB sparse volume with 1% of its blocks
 *   written, against the physical floor of any durable metadata change: the median time of one 128-byte write
 *   into a preallocated file in the pool directory followed by `fdatasync` (what the metadata log does per batch).
 * - `changed-blocks-1pct`: time to list the blocks changed between two snapshots of the 1 GiB volume with 1% of
 *   its blocks rewritten in between, against a full scan that reads every block of the volume.
 * - `read-ranges-1pct` and `write-ranges-1pct`: time of one `readRanges` / `writeRanges` of 1% of the 4 KiB blocks
 *   of a 1 GiB volume (2,621 random blocks), against the same blocks moved with one `read` / `write` call each
 *   (all issued at once), the way a replicator without vectored I/O moves a delta set. The read blocks are the
 *   ones an application rewrote one by one since a snapshot of the filled volume (what a mirror's source reads).
 * - `read-ranges-1pct-limit` and `write-ranges-1pct-limit`: the same vectored calls against the physical limit,
 *   raw `pread` / `pwrite` of the same bytes at the same offsets of a plain file, as synchronous calls with no
 *   thread-pool hop (the writes then `fdatasync`'d once, the same durability). Each vectored case and baseline is
 *   the best of two runs.
 *
 * `STORAGE_BENCH_MIB` scales every size (default 1024: the 1 GiB volumes; the sparse volume is 16 times it).
 */
import { randomBytes } from 'node:crypto'
import { readSync, writeSync } from 'node:fs'
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { openLocalStorage, type LocalStorage } from '../src/adapters/local/local-storage.js'
import { DrError } from '../src/kernel/errors.js'
import { timed, type Report } from './report.js'

const MiB = 1024 * 1024
const GiB = Number(process.env['STORAGE_BENCH_MIB'] ?? 1024) * MiB
const CHUNK = 4 * MiB
const ROUNDS = 2
const BLOCK = 64 * 1024
const SMALL_BLOCK = 4096
const token = { scope: 'bench', value: 1 }

function mbPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000)
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

async function rawWrite(file: string, chunk: Uint8Array, total: number): Promise<number> {
  const handle = await open(file, 'w')
  try {
    const { ms } = await timed(async () => {
      for (let at = 0; at < total; at += chunk.length) {
        await handle.write(chunk, 0, chunk.length, at)
        await handle.datasync()
      }
    })
    return ms
  } finally {
    await handle.close()
  }
}

async function rawRead(file: string, total: number): Promise<number> {
  const handle = await open(file, 'r')
  const buffer = new Uint8Array(CHUNK)
  try {
    const { ms } = await timed(async () => {
      for (let at = 0; at < total; at += CHUNK) await handle.read(buffer, 0, CHUNK, at)
    })
    return ms
  } finally {
    await handle.close()
  }
}

async function writeVolume(storage: LocalStorage, volume: string, chunk: Uint8Array, depth: number): Promise<number> {
  await storage.createVolume({ name: volume, sizeBytes: GiB, blockSize: BLOCK }, token)
  let next = 0
  const { ms } = await timed(() =>
    Promise.all(
      Array.from({ length: depth }, async () => {
        while (next < GiB) {
          const at = next
          next += CHUNK
          await storage.write(volume, at, chunk, token)
        }
      }),
    ),
  )
  return ms
}

async function snapshotMs(storage: LocalStorage, volume: string, runs: number): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const { ms } = await timed(() => storage.createSnapshot(volume, `bench-${i}`, token))
    times.push(ms)
  }
  return median(times)
}

/**
 * Median time of the smallest durable metadata change a pool can make: a 128-byte write into a preallocated file
 * in `dir` followed by `fdatasync`, as the metadata log appends one batch.
 */
async function durableAppendMs(dir: string, runs: number): Promise<number> {
  const file = path.join(dir, 'bench-floor.log')
  const handle = await open(file, 'w+')
  try {
    await handle.write(new Uint8Array(runs * 128), 0, runs * 128, 0)
    await handle.datasync()
    const record = new Uint8Array(randomBytes(128))
    const times: number[] = []
    for (let i = 0; i < runs; i++) {
      const { ms } = await timed(async () => {
        await handle.write(record, 0, record.length, i * record.length)
        await handle.datasync()
      })
      times.push(ms)
    }
    return median(times)
  } finally {
    await handle.close()
    await rm(file)
  }
}

/** `count` distinct random block indexes below `blocks`. */
function randomBlocks(blocks: number, count: number): number[] {
  const chosen = new Set<number>()
  while (chosen.size < count) chosen.add(Math.floor(Math.random() * blocks))
  return [...chosen]
}

/** The fastest of `ROUNDS` runs of `work`, in milliseconds. */
async function bestOf(work: () => Promise<unknown>): Promise<number> {
  let best = Infinity
  for (let round = 0; round < ROUNDS; round++) best = Math.min(best, (await timed(work)).ms)
  return best
}

/**
 * The vectored I/O cases on a 1 GiB volume of 4 KiB blocks: filled, snapshotted (a mirror's last cut), then 1% of
 * its blocks rewritten one by one as an application would — what a mirror's source reads as its next delta set.
 * A plain file holds the same bytes at the same offsets for the physical limit.
 */
async function vectoredCases(storage: LocalStorage, dir: string, report: Report): Promise<void> {
  const volume = 'small-blocks'
  await storage.createVolume({ name: volume, sizeBytes: GiB, blockSize: SMALL_BLOCK }, token)
  const fill = new Uint8Array(randomBytes(CHUNK))
  for (let at = 0; at < GiB; at += 4 * CHUNK) {
    await Promise.all([0, 1, 2, 3].map((k) => storage.write(volume, at + k * CHUNK, fill, token)))
  }
  await storage.createSnapshot(volume, 'last-cut', token)
  const count = Math.floor(GiB / SMALL_BLOCK / 100)
  const blocks = randomBlocks(GiB / SMALL_BLOCK, count)
  const payload = new Uint8Array(randomBytes(count * SMALL_BLOCK))
  const data = (i: number): Uint8Array => payload.subarray(i * SMALL_BLOCK, (i + 1) * SMALL_BLOCK)
  for (let i = 0; i < count; i += 64) {
    await Promise.all(blocks.slice(i, i + 64).map((block, k) => storage.write(volume, block * SMALL_BLOCK, data(i + k), token)))
  }
  const ranges = blocks.map((block) => ({ offset: block * SMALL_BLOCK, length: SMALL_BLOCK }))
  const changes = blocks.map((block, i) => ({ offset: block * SMALL_BLOCK, data: data(i) }))
  const plainFile = path.join(dir, 'plain-small-blocks.dat')
  const plain = await open(plainFile, 'w+')
  try {
    await plain.truncate(GiB)
    rawWriteBlocks(plain, changes)
    await plain.datasync()
    const read = await storage.readRanges(volume, ranges)
    if (!read.every((bytes, i) => Buffer.from(bytes).equals(data(i)))) throw new DrError('E_INTERNAL', 'readRanges returned other bytes than were written')
    const buffer = new Uint8Array(SMALL_BLOCK)
    const ms = {
      vectoredRead: await bestOf(() => storage.readRanges(volume, ranges)),
      singleRead: await bestOf(() => Promise.all(ranges.map(({ offset, length }) => storage.read(volume, offset, length)))),
      rawRead: await bestOf(async () => {
        for (const { offset } of ranges) readSync(plain.fd, buffer, 0, SMALL_BLOCK, offset)
      }),
      vectoredWrite: await bestOf(() => storage.writeRanges(volume, changes, token)),
      singleWrite: await bestOf(() => Promise.all(changes.map((change) => storage.write(volume, change.offset, change.data, token)))),
      rawWrite: await bestOf(async () => {
        rawWriteBlocks(plain, changes)
        await plain.datasync()
      }),
    }
    const blocksLabel = `${count.toLocaleString('en')} random 4 KiB blocks`
    const vs = (what: string): string => `the same ${blocksLabel} with one ${what} call each, all at once`
    const limit = (what: string): string => `raw ${what} of the same ${blocksLabel} at their offsets in a plain file`
    report({ case: 'read-ranges-1pct', metric: 'time', value: ms.vectoredRead, unit: 'ms', baseline: vs('read'), baselineValue: ms.singleRead })
    report({ case: 'read-ranges-1pct-limit', metric: 'time', value: ms.vectoredRead, unit: 'ms', baseline: limit('pread'), baselineValue: ms.rawRead })
    report({ case: 'write-ranges-1pct', metric: 'time', value: ms.vectoredWrite, unit: 'ms', baseline: vs('write'), baselineValue: ms.singleWrite })
    report({
      case: 'write-ranges-1pct-limit',
      metric: 'time',
      value: ms.vectoredWrite,
      unit: 'ms',
      baseline: `${limit('pwrite')}, then one fdatasync`,
      baselineValue: ms.rawWrite,
    })
  } finally {
    await plain.close()
    await rm(plainFile)
    await storage.deleteSnapshot(volume, 'last-cut', token)
    await storage.deleteVolume(volume, token)
  }
}

/** Writes each change's bytes at its offset of `file` with one `pwrite` each (synchronous: no thread-pool hop). */
function rawWriteBlocks(file: FileHandle, changes: ReadonlyArray<{ readonly offset: number; readonly data: Uint8Array }>): void {
  for (const { offset, data } of changes) writeSync(file.fd, data, 0, data.length, offset)
}

/** Runs the local storage benchmarks and reports one line per case. */
export async function run(report: Report): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-bench-storage-'))
  const storage = await openLocalStorage({ dir: path.join(dir, 'pool') })
  try {
    const chunk = new Uint8Array(randomBytes(CHUNK))
    const plain = (round: number): string => path.join(dir, `plain-${round}.dat`)
    const best = { raw: Infinity, qd1: Infinity, qd8: Infinity, rawRead: Infinity, read: Infinity }
    for (let round = 0; round < ROUNDS; round++) {
      best.raw = Math.min(best.raw, await rawWrite(plain(round), chunk, GiB))
      if (round > 0) await storage.deleteVolume('seq', token)
      best.qd1 = Math.min(best.qd1, await writeVolume(storage, 'seq', chunk, 1))
      best.qd8 = Math.min(best.qd8, await writeVolume(storage, 'queued', chunk, 8))
      await storage.deleteVolume('queued', token)
      best.rawRead = Math.min(best.rawRead, await rawRead(plain(round), GiB))
      const { ms } = await timed(async () => {
        for (let at = 0; at < GiB; at += CHUNK) await storage.read('seq', at, CHUNK)
      })
      best.read = Math.min(best.read, ms)
      await rm(plain(round))
    }
    const baseline = 'raw fs write + fdatasync per 4 MiB to a new file'
    const rawRate = mbPerSecond(GiB, best.raw)
    report({ case: 'seq-write-1g', metric: 'throughput', value: mbPerSecond(GiB, best.qd1), unit: 'MB/s', baseline, baselineValue: rawRate })
    report({ case: 'seq-write-1g-qd8', metric: 'throughput', value: mbPerSecond(GiB, best.qd8), unit: 'MB/s', baseline, baselineValue: rawRate })
    report({
      case: 'seq-read-1g',
      metric: 'throughput',
      value: mbPerSecond(GiB, best.read),
      unit: 'MB/s',
      baseline: 'raw fs read per 4 MiB',
      baselineValue: mbPerSecond(GiB, best.rawRead),
    })

    await storage.createVolume({ name: 'sparse', sizeBytes: 16 * GiB, blockSize: BLOCK }, token)
    const sparseBlocks = (16 * GiB) / BLOCK
    const block = chunk.subarray(0, BLOCK)
    const written = Math.floor(sparseBlocks / 100)
    for (let i = 0; i < written; i += 64) {
      await Promise.all(
        Array.from({ length: Math.min(64, written - i) }, (_, k) =>
          storage.write('sparse', Math.floor(((i + k) * sparseBlocks) / written) * BLOCK, block, token),
        ),
      )
    }
    const floorMs = await durableAppendMs(path.join(dir, 'pool'), 21)
    const largeMs = await snapshotMs(storage, 'sparse', 21)
    report({
      case: 'snapshot-create-16g',
      metric: 'median time',
      value: largeMs,
      unit: 'ms',
      baseline: 'a 128-byte write into a preallocated file in the pool directory + fdatasync (any durable metadata change)',
      baselineValue: floorMs,
    })

    await storage.createSnapshot('seq', 'before', token)
    const blocks = GiB / BLOCK
    const changed = Math.floor(blocks / 100)
    for (let i = 0; i < changed; i++) await storage.write('seq', Math.floor((i * blocks) / changed) * BLOCK + 17, chunk.subarray(0, 100), token)
    await storage.createSnapshot('seq', 'after', token)
    const { ms: diffMs, result: diff } = await timed(() => storage.changedBlocks('seq', 'before', 'after'))
    if (diff.blocks.length !== changed) {
      throw new DrError('E_INTERNAL', `changedBlocks listed ${diff.blocks.length} blocks, expected ${changed}`)
    }
    const { ms: scanMs } = await timed(async () => {
      for (let at = 0; at < GiB; at += CHUNK) await storage.read('seq', at, CHUNK, { snapshot: 'after' })
    })
    report({
      case: 'changed-blocks-1pct',
      metric: 'time',
      value: diffMs,
      unit: 'ms',
      baseline: 'full scan reading every block',
      baselineValue: scanMs,
    })
    await vectoredCases(storage, dir, report)
  } finally {
    await storage.close()
    await rm(dir, { recursive: true, force: true })
  }
}
