import { DrError } from '../../kernel/errors.js'

/**
 * Translates a disk path of the backup metadata to the destination: the longest `pathMap` prefix that matches is
 * replaced (no map: the path is kept). A path no prefix matches is refused with `E_PRECONDITION` (an unmapped
 * reference), before anything is created for the VM.
 *
 * @public
 */
export function translatePath(pathMap: Readonly<Record<string, string>> | null, path: string): string {
  if (pathMap === null) return path
  const prefix = Object.keys(pathMap).filter((from) => path.startsWith(from)).sort((a, b) => b.length - a.length)[0]
  if (prefix === undefined) throw new DrError('E_PRECONDITION', `unmapped reference: disk path "${path}" has no entry in the plan's path map`, { path, reason: 'unmapped-reference' })
  return `${pathMap[prefix] ?? ''}${path.slice(prefix.length)}`
}
