import type { Json } from './codecs.js'
import type { FenceToken } from './fencing.js'

/**
 * An event to append to a journal stream: its type and a JSON payload.
 *
 * @public
 */
export interface NewRecord {
  readonly type: string
  readonly data: Json
}

/**
 * One record as stored in a journal stream. `version` is its 1-based position in the stream, dense (no gaps), so
 * that a writer can name the version it expects next and a reader can resume after any version; `at` is the time
 * it was appended (ms since the epoch). A store with a global commit order of its own may add it as `revision`
 * (etcd: the revision of the transaction that committed the append, shared by the records of one append and
 * increasing across every stream) — metadata for correlating with the store, never needed to use the journal.
 *
 * @public
 */
export interface JournalRecord {
  readonly stream: string
  readonly version: number
  readonly type: string
  readonly data: Json
  readonly at: number
  readonly revision?: number
}

/**
 * A saved fold of a stream up to `version`, so replay after a restart reads only what came after it.
 *
 * @public
 */
export interface StateSnapshot {
  readonly stream: string
  readonly version: number
  readonly state: Json
}

/**
 * The journal port. Every durable fact in drkit is a record appended to a named stream (`workflow/<id>`,
 * `snapshot/catalog`…). Appends are atomic per call and use optimistic concurrency: the caller names the
 * version it expects the stream to be at and gets `E_CONFLICT` if another writer got there first.
 * Implementations: memory (tests), the file journal (embedded default), etcd (multi-coordinator).
 *
 * @public
 */
export interface StateStore {
  /** A short name for errors and logs (`memory`, `file`, `etcd`). */
  readonly kind: string
  /**
   * Appends `records` to `stream` if the stream is at `expectedVersion` (0 for a new stream); resolves with
   * the new version once the records are durable. Rejects with `E_CONFLICT` on a version mismatch, having
   * written nothing.
   */
  append(stream: string, expectedVersion: number, records: readonly NewRecord[]): Promise<number>
  /** Records of `stream` with version greater than `afterVersion` (default 0: all), in order. */
  read(stream: string, afterVersion?: number): Promise<readonly JournalRecord[]>
  /** The current version of `stream` (0 when it does not exist). */
  version(stream: string): Promise<number>
  /** The names of every stream that starts with `prefix`, sorted. */
  listStreams(prefix: string): Promise<readonly string[]>
  /**
   * Calls `listener` with every record appended from now on to a stream starting with `prefix`, in append
   * order. Returns a function that unsubscribes.
   */
  subscribe(prefix: string, listener: (record: JournalRecord) => void): () => void
  /** Saves a fold of a stream so that later replays can start from it. */
  saveSnapshot(snapshot: StateSnapshot): Promise<void>
  /** The newest saved snapshot of `stream`, if any. */
  loadSnapshot(stream: string): Promise<StateSnapshot | undefined>
  /**
   * Binds this store's writes to a coordinator's fence token: from now on `append` and `saveSnapshot` succeed only
   * while `token` holds its scope, and reject with `E_FENCED` (naming the scope, having written nothing) once a
   * newer coordinator does, so a deposed coordinator cannot add to the shared journal. Rejects with `E_FENCED` at
   * once when `token` is already stale, `E_INVALID_INPUT` when it is not a token. A store shared by coordinators on
   * several machines (etcd) checks the lease behind the token in every write; a store that only one process writes
   * (memory, file) has no deposed writer to refuse and only refuses a token lower than one it was bound to before.
   */
  fence(token: FenceToken): Promise<void>
  /** Flushes and releases resources; later calls reject with `E_CLOSED`; a second `close()` does nothing. */
  close(): Promise<void>
}
