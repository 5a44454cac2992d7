import { randomUUID } from 'node:crypto'
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { DrError } from '../../kernel/errors.js'
import { hasErrorCode } from '../fs/durable-io.js'

/** A held lock; `release` removes the lock file (if it is still this holder's). */
export interface DirectoryLock {
  readonly file: string
  release(): Promise<void>
}

interface Owner {
  readonly pid: number
  readonly host: string
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return !hasErrorCode(error, 'ESRCH')
  }
}

function ownerOf(content: string): Owner | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(content)
  } catch {
    return undefined
  }
  const { pid, host } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { readonly pid?: unknown; readonly host?: unknown }
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 && typeof host === 'string' ? { pid, host } : undefined
}

/** A pid names a process only on its own host: a lock taken elsewhere (shared file system) counts as held. */
const isHeld = (owner: Owner): boolean => owner.host !== hostname() || isAlive(owner.pid)

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if (hasErrorCode(error, 'ENOENT')) return undefined
    throw error
  }
}

function conflict(file: string, what: string, reason: string, owner?: Owner): DrError {
  return new DrError('E_CONFLICT', `${what} is in use: ${reason} (lock file ${file})`, {
    file,
    ...(owner === undefined ? {} : { pid: owner.pid, host: owner.host }),
  })
}

/**
 * Removes the stale lock whose content was `expected`. It is first renamed aside and checked: if another process
 * replaced it meanwhile, that lock is put back and the caller gets `E_CONFLICT`, so two processes taking over
 * the same stale lock cannot both win.
 */
async function removeStale(file: string, expected: string, what: string): Promise<void> {
  const aside = `${file}.stale.${process.pid}.${randomUUID()}`
  try {
    await rename(file, aside)
  } catch (error) {
    if (hasErrorCode(error, 'ENOENT')) return
    throw error
  }
  const moved = await readText(aside)
  if (moved !== expected) {
    await link(aside, file).catch(() => undefined)
    await rm(aside, { force: true })
    throw conflict(file, what, 'another process took the stale lock over first')
  }
  await rm(aside, { force: true })
}

/**
 * Takes the lock file `file` for this process. The lock, holding `{ pid, host }`, is written under a private
 * name and hard-linked into place, which fails when a lock exists, so it is never seen half written. A lock
 * whose process no longer runs on this host, or that is unreadable, is stale and taken over. Rejects with
 * `E_CONFLICT` while another live process — or this one — holds it. A pid reused by an unrelated process
 * makes a stale lock look held: delete the lock file once sure that nothing uses the directory.
 */
export async function acquireDirectoryLock(file: string, what: string): Promise<DirectoryLock> {
  const content = `${JSON.stringify({ pid: process.pid, host: hostname(), token: randomUUID() })}\n`
  const mine = `${file}.${process.pid}.${randomUUID()}`
  await writeFile(mine, content)
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(mine, file)
        return {
          file,
          release: async () => {
            if ((await readText(file)) === content) await rm(file, { force: true })
          },
        }
      } catch (error) {
        if (!hasErrorCode(error, 'EEXIST')) throw error
      }
      const current = await readText(file)
      if (current === undefined) continue
      const owner = ownerOf(current)
      if (owner !== undefined && isHeld(owner)) {
        throw conflict(file, what, owner.pid === process.pid ? 'already open in this process' : `held by process ${owner.pid} on ${owner.host}`, owner)
      }
      await removeStale(file, current, what)
    }
    throw conflict(file, what, 'the lock kept changing hands')
  } finally {
    await rm(mine, { force: true })
  }
}
