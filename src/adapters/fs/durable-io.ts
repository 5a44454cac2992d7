import { open, type FileHandle } from 'node:fs/promises'
import { readSync } from 'node:fs'

/** Error codes with which platforms that cannot fsync a directory (Windows) refuse to; a rename there is durable. */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'EACCES'])

function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { readonly code?: unknown }).code : undefined
  return typeof code === 'string' ? code : undefined
}

/** True when `error` is a Node system error with the given `code` (`ENOENT`, `EEXIST`…). */
export function hasErrorCode(error: unknown, code: string): boolean {
  return errorCode(error) === code
}

/** Makes the entries of directory `dir` (files created, renamed or removed in it) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch (error) {
    if (!DIRECTORY_SYNC_UNSUPPORTED.has(errorCode(error) ?? '')) throw error
  } finally {
    await handle?.close()
  }
}

/** Writes all of `bytes` at `position`, however many calls the kernel needs. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written)
    written += bytesWritten
  }
}

/** Reads exactly `length` bytes at `position` into the start of `buffer`; returns how many there were (fewer at end of file). */
export async function readFully(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<number> {
  let read = 0
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, read, length - read, position + read)
    if (bytesRead === 0) break
    read += bytesRead
  }
  return read
}

/** {@link readFully} without leaving the current tick: for reads of bytes known to be in the file. */
export function readFullySync(fd: number, buffer: Buffer, length: number, position: number): number {
  let read = 0
  while (read < length) {
    const bytesRead = readSync(fd, buffer, read, length - read, position + read)
    if (bytesRead === 0) break
    read += bytesRead
  }
  return read
}
