import { createHash } from 'node:crypto'
import type { StoragePort } from '../../src/index.js'

/** SHA-256 of some bytes, as hex. */
export const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** SHA-256 of a whole volume (or of one of its snapshots), read in 1 MiB pieces. */
export async function volumeDigest(storage: StoragePort, volume: string, snapshot?: string): Promise<string> {
  const { sizeBytes } = await storage.volumeInfo(volume)
  const hash = createHash('sha256')
  for (let offset = 0; offset < sizeBytes; offset += 2 ** 20) {
    hash.update(await storage.read(volume, offset, Math.min(2 ** 20, sizeBytes - offset), snapshot === undefined ? {} : { snapshot }))
  }
  return hash.digest('hex')
}

/** Polls `check` every 25 ms until it holds; rejects naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Resolves with the first value `subscribe` delivers; rejects naming `what` after `timeoutMs`. */
export function nextEvent<T>(what: string, subscribe: (deliver: (value: T) => void) => () => void, timeoutMs = 60_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop()
      reject(new Error(`timed out waiting for ${what}`))
    }, timeoutMs)
    const stop = subscribe((value) => {
      clearTimeout(timer)
      stop()
      resolve(value)
    })
  })
}
