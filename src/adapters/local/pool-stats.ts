import type { BlockFileUsage } from './block-store.js'
import type { LocalPool } from './local-pool.js'

/**
 * Work and space counters of a local pool since it was opened, for tests and benchmarks: map pages and
 * entries looked at by changed-block diffs, bytes and batches written to the metadata log and checkpoints,
 * file reads and writes issued on the block files (each one `preadv` or `pwritev` of one or more consecutive
 * slots, so vectored I/O shows here as fewer calls), and the space of each block file.
 *
 * @public
 */
export interface LocalStorageStats {
  readonly pagesVisited: number
  readonly entriesVisited: number
  readonly metadataBytesWritten: number
  readonly logBatches: number
  readonly blockReads: number
  readonly blockWrites: number
  readonly blockFiles: readonly BlockFileUsage[]
}

/** The counters of an open pool now. */
export function poolStats(pool: LocalPool): LocalStorageStats {
  const stores = [...pool.state.stores.values()]
  return {
    pagesVisited: pool.state.stats.pagesVisited,
    entriesVisited: pool.state.stats.entriesVisited,
    metadataBytesWritten: pool.metadata.metadataBytesWritten,
    logBatches: pool.metadata.batchesWritten,
    blockReads: stores.reduce((sum, store) => sum + store.calls().reads, 0),
    blockWrites: stores.reduce((sum, store) => sum + store.calls().writes, 0),
    blockFiles: stores.map((store) => store.usage()),
  }
}
