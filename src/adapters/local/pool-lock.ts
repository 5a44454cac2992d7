import { randomUUID } from 'node:crypto'
import { link, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DrError } from '../../kernel/errors.js'

const LOCK_FILE = 'LOCK'
/** The lock files this process holds, by device and inode, so a pool reached by two paths is still recognised. */
const heldHere = new Set<string>()

async function fileId(path: string): Promise<string | undefined> {
  try {
    const { dev, ino } = await stat(path)
    return `${dev}:${ino}`
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw error
  }
}

function errorCode(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errorCode(error) === 'EPERM'
  }
}

function conflict(dir: string, holder: string): DrError {
  return new DrError('E_CONFLICT', `local: pool ${dir} is open in another process or instance (${holder})`, {
    adapter: 'local',
    dir,
    holder,
  })
}

async function readLock(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw error
  }
}

/**
 * The exclusive claim of one process (and one adapter instance) on a pool directory: a `LOCK` file holding
 * the owner's pid, created atomically (written under a private name, then hard-linked into place, which fails
 * if it exists). A lock whose pid is no longer running (or is this process's pid but not a lock file it
 * holds: a previous life, or a copied pool) is stale and is taken over; the stale file is moved aside first and checked, so two processes
 * racing for a stale lock cannot both win.
 */
export class PoolLock {
  readonly #path: string
  readonly #id: string

  private constructor(path: string, id: string) {
    this.#path = path
    this.#id = id
  }

  /** Claims `dir`, or rejects with `E_CONFLICT` while a live process (or another instance here) holds it. */
  static async acquire(dir: string): Promise<PoolLock> {
    const path = join(dir, LOCK_FILE)
    const content = `${process.pid} ${randomUUID()}\n`
    const mine = join(dir, `${LOCK_FILE}.${process.pid}.${randomUUID()}`)
    await writeFile(mine, content)
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await link(mine, path)
          const id = (await fileId(path)) ?? path
          heldHere.add(id)
          return new PoolLock(path, id)
        } catch (error) {
          if (errorCode(error) !== 'EEXIST') throw error
        }
        const id = await fileId(path)
        if (id !== undefined && heldHere.has(id)) throw conflict(dir, `pid ${process.pid}, this process`)
        const current = await readLock(path)
        if (current === undefined) continue
        const pid = Number.parseInt(current, 10)
        if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) throw conflict(dir, `pid ${pid}`)
        await PoolLock.#removeStale(path, current, dir)
      }
      throw conflict(dir, 'lock kept changing')
    } finally {
      await rm(mine, { force: true })
    }
  }

  static async #removeStale(path: string, expected: string, dir: string): Promise<void> {
    const aside = `${path}.stale.${process.pid}.${randomUUID()}`
    try {
      await rename(path, aside)
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return
      throw error
    }
    const moved = await readLock(aside)
    if (moved !== expected) {
      await link(aside, path).catch(() => undefined)
      await rm(aside, { force: true })
      throw conflict(dir, 'another process took the stale lock over first')
    }
    await rm(aside, { force: true })
  }

  /** Gives the pool up. */
  async release(): Promise<void> {
    heldHere.delete(this.#id)
    await rm(this.#path, { force: true })
  }
}
