import { mkdir, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { GroupCommitter, type FsyncMode } from './group-commit.js'
import { acquireDirectoryLock, type DirectoryLock } from './lock-file.js'
import type { FrameMeta } from './journal-format.js'
import { journalCorruption, openJournalFile } from './journal-file.js'
import { JournalIndex } from './journal-index.js'
import { RecentBytes } from './recent-bytes.js'
import { SnapshotFiles } from './snapshot-files.js'

/**
 * A file journal once opened: the journal file and its handle, the directory lock held, the index of every
 * frame, the group committer that appends, the snapshot files, the cache of the journal's last bytes, and how
 * many bytes of torn tail opening cut off.
 */
export interface OpenJournal {
  readonly file: string
  readonly handle: FileHandle
  readonly lock: DirectoryLock
  readonly index: JournalIndex
  readonly log: GroupCommitter
  readonly snapshots: SnapshotFiles
  readonly recent: RecentBytes
  readonly truncatedBytes: number
}

/**
 * Opens the journal in `dir` (creating the directory and its `snapshots/` when missing): takes the directory lock
 * (`E_CONFLICT` when another process holds it), removes stray snapshot temp files, indexes every frame while
 * checking that each stream's versions follow on (`E_CORRUPT` naming the offset otherwise), keeps the last
 * `cacheBytes` of the journal in memory, and cuts off a torn tail. The lock is released when opening fails.
 */
export async function openJournal(dir: string, mode: FsyncMode, cacheBytes: number): Promise<OpenJournal> {
  await mkdir(path.join(dir, 'snapshots'), { recursive: true })
  const file = path.join(dir, 'journal.log')
  const lock = await acquireDirectoryLock(path.join(dir, 'journal.lock'), `file journal ${dir}`)
  try {
    const snapshots = new SnapshotFiles(path.join(dir, 'snapshots'))
    await snapshots.removeStrayTemps()
    const index = new JournalIndex()
    const recent = new RecentBytes(cacheBytes)
    const visit = (meta: FrameMeta, offset: number, size: number): void => {
      const entry = index.entry(meta.stream)
      if (meta.firstVersion !== entry.durable + 1) {
        throw journalCorruption(file, offset, `stream "${meta.stream}" jumps from version ${entry.durable} to ${meta.firstVersion}`)
      }
      index.addFrame(entry, offset, size, meta.firstVersion, meta.count)
    }
    const opened = await openJournalFile(file, visit, (offset, bytes) => recent.add(offset, bytes))
    recent.truncate(opened.end)
    const log = new GroupCommitter(opened.handle, opened.end, mode, file)
    return { file, handle: opened.handle, lock, index, log, snapshots, recent, truncatedBytes: opened.truncatedBytes }
  } catch (error) {
    await lock.release()
    throw error
  }
}
