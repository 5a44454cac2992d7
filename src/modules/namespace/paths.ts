import * as t from 'io-ts'

const MAX_PATH_LENGTH = 512
const MAX_DEPTH = 32
const BAD_SEGMENT = /[\u0000-\u001f\u007f:*?"<>|]/

function segmentsOf(path: string): string[] {
  return path.split(/[\\/]+/).filter((segment) => segment !== '')
}

function validSegment(segment: string): boolean {
  return segment.length <= 255 && segment !== '.' && segment !== '..' && !BAD_SEGMENT.test(segment)
}

/**
 * Puts a logical path in the one form drkit stores and matches it in: `/`-separated (a `\` counts as a
 * separator too, so `\eng\src` and `/eng/src` are the same link), a leading `/`, no empty segments and no
 * trailing `/`; the namespace root is `/`. Returns undefined when the path is not valid.
 *
 * @public
 */
export function normaliseLogicalPath(path: string): string | undefined {
  if (path.length > MAX_PATH_LENGTH) return undefined
  const segments = segmentsOf(path)
  if (segments.length > MAX_DEPTH || !segments.every(validSegment)) return undefined
  return `/${segments.join('/')}`
}

/**
 * A logical path inside a namespace, like `/eng/builds` or `\eng\builds`: at most 32 segments and 512
 * characters, segments of 1–255 characters without control characters, `:*?"<>|`, and never `.` or `..`.
 * Decodes to the normalised form (see {@link normaliseLogicalPath}); `/` is the namespace root.
 *
 * @public
 */
export const LogicalPath = new t.Type<string, string, unknown>(
  'LogicalPath (/-separated segments without control characters, :*?"<>| or . and ..)',
  (u): u is string => typeof u === 'string' && normaliseLogicalPath(u) === u,
  (u, c) => {
    if (typeof u !== 'string') return t.failure(u, c)
    const normal = normaliseLogicalPath(u)
    return normal === undefined ? t.failure(u, c) : t.success(normal)
  },
  t.identity,
)

/**
 * One segment of a logical path (a folder or link name), as `rename` takes it.
 *
 * @public
 */
export const PathSegment = new t.Type<string, string, unknown>(
  'PathSegment (1-255 characters, no separators, control characters, :*?"<>| or . and ..)',
  (u): u is string => typeof u === 'string' && u.length > 0 && !/[\\/]/.test(u) && validSegment(u),
  (u, c) => (typeof u === 'string' && u.length > 0 && !/[\\/]/.test(u) && validSegment(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/**
 * The parent folder of a normalised path (`/` for a top-level node and for the root itself).
 *
 * @public
 */
export function parentPath(path: string): string {
  const at = path.lastIndexOf('/')
  return at <= 0 ? '/' : path.slice(0, at)
}

/**
 * The last segment of a normalised path (empty for the root).
 *
 * @public
 */
export function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/**
 * `name` under folder `parent`, both normalised.
 *
 * @public
 */
export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/**
 * True when `path` is `ancestor` or lies below it.
 *
 * @public
 */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '/' || path === ancestor || path.startsWith(`${ancestor}/`)
}

/**
 * Every proper ancestor folder of `path`, nearest to the root first, excluding the root itself.
 *
 * @public
 */
export function ancestorsOf(path: string): string[] {
  const segments = segmentsOf(path)
  const result: string[] = []
  for (let i = 1; i < segments.length; i++) result.push(`/${segments.slice(0, i).join('/')}`)
  return result
}

/**
 * The state key of a node: its namespace and normalised path.
 *
 * @public
 */
export function nodeKey(namespace: string, path: string): string {
  return `${namespace}:${path}`
}
