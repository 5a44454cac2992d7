import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import type { NamespaceLink } from '../../ports/network.js'
import { childPath, isWithin, lastSegment, parentPath } from './paths.js'
import { allNodes, nodeAt, type NamespaceJournalEvent, type NamespaceNode, type NamespaceState, type Target } from './state.js'

type Events = DrEither<readonly NamespaceJournalEvent[]>

/** States in which a link's targets belong to a running workflow and must not be edited by hand. */
const BUSY = new Set(['failingOver', 'failingBack'])

function requireNamespace(state: NamespaceState, namespace: string): DrEither<void> {
  return state.namespaces[namespace] === undefined
    ? E.left(new DrError('E_NOT_FOUND', `namespace "${namespace}" is not managed by drkit`, { namespace }))
    : E.right(undefined)
}

/**
 * The node at `path` of `namespace`, or `E_NOT_FOUND`.
 *
 * @public
 */
export function findNode(state: NamespaceState, namespace: string, path: string): DrEither<NamespaceNode> {
  const node = nodeAt(state, namespace, path)
  return node === undefined ? E.left(new DrError('E_NOT_FOUND', `nothing at "${path}" in namespace "${namespace}"`, { namespace, path })) : E.right(node)
}

/**
 * The link point at `path`, or `E_NOT_FOUND` (nothing there) / `E_PRECONDITION` (a folder).
 *
 * @public
 */
export function findLink(state: NamespaceState, namespace: string, path: string): DrEither<NamespaceNode> {
  return E.chain((node: NamespaceNode) =>
    node.kind === 'link' ? E.right(node) : E.left(new DrError('E_PRECONDITION', `"${path}" in namespace "${namespace}" is a folder, not a link`, { namespace, path })),
  )(findNode(state, namespace, path))
}

/** Checks that `path` may hold a new node: not the root, free, and its parent is the root or a folder. */
function checkPlace(state: NamespaceState, namespace: string, path: string): DrEither<void> {
  if (path === '/') return E.left(new DrError('E_CONFLICT', `the root of namespace "${namespace}" always exists`, { namespace, path }))
  if (nodeAt(state, namespace, path) !== undefined) {
    return E.left(new DrError('E_CONFLICT', `"${path}" already exists in namespace "${namespace}"`, { namespace, path }))
  }
  const parent = parentPath(path)
  if (parent === '/') return E.right(undefined)
  const folder = nodeAt(state, namespace, parent)
  if (folder === undefined) return E.left(new DrError('E_NOT_FOUND', `folder "${parent}" does not exist in namespace "${namespace}"`, { namespace, path: parent }))
  if (folder.kind !== 'folder') {
    return E.left(new DrError('E_PRECONDITION', `"${parent}" is a link point; links cannot contain other nodes`, { namespace, path: parent }))
  }
  return E.right(undefined)
}

/**
 * Checks a target list: at least one target, no share twice, and exactly one `active` target (the first one is
 * made active when none is).
 *
 * @public
 */
export function normaliseTargets(targets: readonly Target[], where: { namespace: string; path: string }): DrEither<Target[]> {
  if (targets.length === 0) return E.left(new DrError('E_PRECONDITION', `link "${where.path}" must keep at least one target`, where))
  const seen = new Set<string>()
  for (const target of targets) {
    const key = `${target.site}/${target.share}`
    if (seen.has(key)) return E.left(new DrError('E_CONFLICT', `share ${key} is a target of "${where.path}" twice`, { ...where, share: key }))
    seen.add(key)
  }
  let active = false
  const result = targets.map((target) => {
    const state = target.state === 'active' && !active ? 'active' : 'standby'
    if (state === 'active') active = true
    return { site: target.site, share: target.share, state } as Target
  })
  const first = result[0]
  if (!active && first !== undefined) result[0] = { ...first, state: 'active' }
  return E.right(result)
}

/**
 * Decides to start managing `namespace`, adopting the links the namespace server already has (the A-1 acquire).
 *
 * @public
 */
export function decideCreateNamespace(state: NamespaceState, namespace: string, serverLinks: readonly NamespaceLink[], at: number): Events {
  if (state.namespaces[namespace] !== undefined) return E.left(new DrError('E_CONFLICT', `namespace "${namespace}" is already managed`, { namespace }))
  const links = serverLinks
    .filter((link) => link.path !== '/' && link.targets.length > 0)
    .map((link) => ({ path: link.path, targets: link.targets.map((target) => ({ site: target.site, share: target.share, state: target.state })) }))
  return E.right([{ type: 'namespace.created', data: { namespace, at, links } }])
}

/**
 * Decides to create a folder or a link point (a link needs at least one target).
 *
 * @public
 */
export function decideCreateNode(state: NamespaceState, namespace: string, path: string, kind: 'folder' | 'link', targets: readonly Target[], at: number): Events {
  const checked = E.chain(() => checkPlace(state, namespace, path))(requireNamespace(state, namespace))
  if (E.isLeft(checked)) return checked
  if (kind === 'folder') return E.right([{ type: 'node.created', data: { namespace, path, kind, targets: [], at } }])
  const normal = normaliseTargets(targets, { namespace, path })
  if (E.isLeft(normal)) return normal
  return E.right([{ type: 'node.created', data: { namespace, path, kind, targets: normal.right, at } }])
}

function busyBelow(state: NamespaceState, namespace: string, path: string): NamespaceNode | undefined {
  return allNodes(state).find(
    (node) => node.namespace === namespace && isWithin(node.path, path) && node.protection !== null && BUSY.has(node.protection.state),
  )
}

/**
 * Decides to move a folder (with everything below it) or a link to `to`. Refused while a failover or failback
 * runs on a link being moved, and for a folder moved into itself.
 *
 * @public
 */
export function decideMove(state: NamespaceState, namespace: string, from: string, to: string): Events {
  const node = findNode(state, namespace, from)
  if (E.isLeft(node)) return node
  if (from === to) return E.right([])
  if (node.right.kind === 'folder' && isWithin(to, from)) {
    return E.left(new DrError('E_PRECONDITION', `folder "${from}" cannot be moved into itself ("${to}")`, { namespace, from, to }))
  }
  const place = checkPlace(state, namespace, to)
  if (E.isLeft(place)) return place
  const busy = busyBelow(state, namespace, from)
  if (busy !== undefined) {
    return E.left(new DrError('E_PRECONDITION', `link "${busy.path}" is ${busy.protection?.state ?? 'busy'}; wait for it to finish`, { namespace, path: busy.path }))
  }
  return E.right([{ type: 'node.moved', data: { namespace, from, to } }])
}

/**
 * Decides to rename the last segment of a node's path.
 *
 * @public
 */
export function decideRename(state: NamespaceState, namespace: string, path: string, name: string): Events {
  if (path === '/') return E.left(new DrError('E_PRECONDITION', 'the root cannot be renamed', { namespace, path }))
  return lastSegment(path) === name ? E.right([]) : decideMove(state, namespace, path, childPath(parentPath(path), name))
}

/**
 * Decides to delete a node: a folder must be empty, a link must not be protected (unprotect it first).
 *
 * @public
 */
export function decideDeleteNode(state: NamespaceState, namespace: string, path: string): Events {
  const node = findNode(state, namespace, path)
  if (E.isLeft(node)) return node
  if (node.right.kind === 'folder') {
    const child = allNodes(state).find((n) => n.namespace === namespace && n.path !== path && isWithin(n.path, path))
    if (child !== undefined) return E.left(new DrError('E_PRECONDITION', `folder "${path}" is not empty ("${child.path}")`, { namespace, path }))
  } else if (node.right.protection !== null) {
    return E.left(new DrError('E_PRECONDITION', `link "${path}" is protected; unprotect it before deleting it`, { namespace, path }))
  }
  return E.right([{ type: 'node.deleted', data: { namespace, path } }])
}

function editableLink(state: NamespaceState, namespace: string, path: string): DrEither<NamespaceNode> {
  return E.chain((link: NamespaceNode) =>
    link.protection !== null && BUSY.has(link.protection.state)
      ? E.left(new DrError('E_PRECONDITION', `link "${path}" is ${link.protection.state}; its targets are being switched`, { namespace, path }))
      : E.right(link),
  )(findLink(state, namespace, path))
}

/**
 * Decides to add a target to a link (`active` only if asked, or if the link has no active target).
 *
 * @public
 */
export function decideAddTarget(state: NamespaceState, namespace: string, path: string, target: Target): Events {
  const link = editableLink(state, namespace, path)
  if (E.isLeft(link)) return link
  const existing = link.right.targets.filter((t) => !(t.site === target.site && t.share === target.share))
  if (existing.length < link.right.targets.length) {
    return E.left(new DrError('E_CONFLICT', `${target.site}/${target.share} is already a target of "${path}"`, { namespace, path }))
  }
  const ordered = target.state === 'active' ? [target, ...existing.map((t) => ({ ...t, state: 'standby' as const }))] : [...existing, target]
  const normal = normaliseTargets(ordered, { namespace, path })
  if (E.isLeft(normal)) return normal
  return E.right([{ type: 'link.targetsSet', data: { namespace, path, targets: normal.right } }])
}

/**
 * Decides to remove a target. Refused when it is the last one (a link always has a target) or the primary share
 * of a protection that still refers to it (unprotect first); removing the active target activates the next.
 *
 * @public
 */
export function decideRemoveTarget(state: NamespaceState, namespace: string, path: string, site: string, share: string): Events {
  const link = editableLink(state, namespace, path)
  if (E.isLeft(link)) return link
  const remaining = link.right.targets.filter((t) => !(t.site === site && t.share === share))
  if (remaining.length === link.right.targets.length) {
    return E.left(new DrError('E_NOT_FOUND', `${site}/${share} is not a target of "${path}"`, { namespace, path, site, share }))
  }
  const protection = link.right.protection
  if (protection !== null && protection.state !== 'failedOver' && protection.primary.site === site && protection.primary.share === share) {
    return E.left(new DrError('E_PRECONDITION', `${site}/${share} is the protected primary share of "${path}"; unprotect the link first`, { namespace, path }))
  }
  const normal = normaliseTargets(remaining, { namespace, path })
  if (E.isLeft(normal)) return normal
  return E.right([{ type: 'link.targetsSet', data: { namespace, path, targets: normal.right } }])
}

/**
 * Where a logical path leads in drkit's copy: the link covering it with the longest path, its active target and
 * the rest of the path below the link. `E_NOT_FOUND` when no link covers the path.
 *
 * @public
 */
export function resolveInState(state: NamespaceState, namespace: string, path: string): DrEither<{ link: string; target: Target; remainder: string }> {
  const missing = E.left(new DrError('E_NOT_FOUND', `no link of namespace "${namespace}" covers "${path}"`, { namespace, path }))
  for (let candidate = path; ; candidate = parentPath(candidate)) {
    const node = nodeAt(state, namespace, candidate)
    if (node !== undefined && node.kind === 'link') {
      const target = node.targets.find((t) => t.state === 'active') ?? node.targets[0]
      if (target === undefined) return missing
      return E.right({ link: node.path, target, remainder: path.slice(candidate.length) })
    }
    if (candidate === '/') return missing
  }
}
