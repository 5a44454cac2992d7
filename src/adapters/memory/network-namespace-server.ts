import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import { decode } from '../../kernel/decode.js'
import { Name, NonNegativeInt } from '../../kernel/codecs.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type { NamespaceDocument, NamespaceLink, NamespaceServer, Referral } from '../../ports/network.js'
import { NonEmptyText } from './network-codecs.js'

const LinkTargetCodec = t.type({
  site: Name,
  share: NonEmptyText,
  state: t.union([t.literal('active'), t.literal('standby')]),
})

const LinkCodec = t.type({ path: t.string, targets: t.array(LinkTargetCodec) })

const NamespaceDocumentCodec = t.type({ namespace: NonEmptyText, version: NonNegativeInt, links: t.array(LinkCodec) }, 'NamespaceDocument')

const NamespacePatchCodec = t.type(
  { namespace: NonEmptyText, version: NonNegativeInt, set: t.array(LinkCodec), remove: t.array(t.string) },
  'NamespacePatch',
)

/** One namespace as the server holds it: its version and its links by normalised path, in the order they came. */
interface Held {
  readonly version: number
  readonly links: Map<string, NamespaceLink>
}

/**
 * Puts a logical path in the one form links are stored and matched in: `/`-separated (a `\` counts as a
 * separator too), a leading `/`, no empty or `.` segments and no trailing `/`; the root is `/`.
 */
function normaliseNamespacePath(path: string): string {
  const segments = path.split(/[\\/]+/).filter((segment) => segment !== '' && segment !== '.')
  return `/${segments.join('/')}`
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/')
  return at <= 0 ? '/' : path.slice(0, at)
}

function copyLink(link: t.TypeOf<typeof LinkCodec>): NamespaceLink {
  return { path: normaliseNamespacePath(link.path), targets: link.targets.map((target) => ({ site: target.site, share: target.share, state: target.state })) }
}

/**
 * An in-memory DFS-like namespace server: versioned namespace documents, written whole or patched link by link
 * under a fence token with optimistic concurrency, and referrals by the longest matching link. Documents are
 * copied in and out, so a caller never shares an object with the server. It can also stand in for the domain
 * controller behind a DFS server: {@link MemoryNamespaceServer.grant} restricts who is referred through a link.
 * One is shared by every port of a memory network fabric; it can also be used on its own.
 *
 * @public
 */
export class MemoryNamespaceServer implements NamespaceServer {
  readonly #guard = new FenceGuard('memory.namespaceServer')
  readonly #namespaces = new Map<string, Held>()
  readonly #grants = new Map<string, ReadonlySet<string>>()

  async readNamespace(namespace: string): Promise<NamespaceDocument> {
    const name = decode(NonEmptyText, namespace, 'namespace name')
    const held = this.#namespaces.get(name)
    return { namespace: name, version: held?.version ?? 0, links: [...(held?.links.values() ?? [])].map((link) => structuredClone(link)) }
  }

  async presentToken(token: FenceToken): Promise<void> {
    this.#guard.check(token, 'presentToken')
  }

  async writeNamespace(document: NamespaceDocument, token: FenceToken): Promise<void> {
    const input = decode(NamespaceDocumentCodec, document, 'namespace document')
    const links = input.links.map(copyLink)
    this.#checkDistinct(input.namespace, links.map((link) => link.path))
    this.#guard.check(token, 'writeNamespace')
    this.#checkTargets(input.namespace, links)
    this.#checkVersion(input.namespace, input.version)
    this.#namespaces.set(input.namespace, { version: input.version, links: new Map(links.map((link) => [link.path, link])) })
  }

  async patchNamespace(patch: Parameters<NamespaceServer['patchNamespace']>[0], token: FenceToken): Promise<void> {
    const input = decode(NamespacePatchCodec, patch, 'namespace patch')
    const set = input.set.map(copyLink)
    const remove = input.remove.map(normaliseNamespacePath)
    this.#checkDistinct(input.namespace, [...set.map((link) => link.path), ...remove])
    this.#guard.check(token, 'patchNamespace')
    this.#checkTargets(input.namespace, set)
    this.#checkVersion(input.namespace, input.version)
    // Every check has passed: the patch applies in place, in time proportional to what it names.
    const links = this.#namespaces.get(input.namespace)?.links ?? new Map<string, NamespaceLink>()
    for (const path of remove) links.delete(path)
    for (const link of set) links.set(link.path, link)
    this.#namespaces.set(input.namespace, { version: input.version, links })
  }

  /**
   * Restricts who is referred through the link at `path` of `namespace` to `principals` (as a domain controller's
   * rights on a DFS link would); `null` lifts the restriction. Without a restriction every client is referred.
   */
  grant(namespace: string, path: string, principals: readonly string[] | null): void {
    const key = `${decode(NonEmptyText, namespace, 'namespace name')}:${normaliseNamespacePath(decode(NonEmptyText, path, 'link path'))}`
    if (principals === null) this.#grants.delete(key)
    else this.#grants.set(key, new Set(decode(t.array(Name), principals, 'principals')))
  }

  async resolve(namespace: string, logicalPath: string, principal?: string): Promise<Referral> {
    const name = decode(NonEmptyText, namespace, 'namespace name')
    const path = normaliseNamespacePath(decode(t.string, logicalPath, 'logical path'))
    const who = principal === undefined ? undefined : decode(Name, principal, 'principal')
    const links = this.#namespaces.get(name)?.links
    let best: NamespaceLink | undefined
    for (let candidate = path; links !== undefined; candidate = parentOf(candidate)) {
      best = links.get(candidate)
      if (best !== undefined || candidate === '/') break
    }
    if (best === undefined) {
      throw new DrError('E_NOT_FOUND', `no link of namespace "${name}" covers "${path}"`, { namespace: name, path })
    }
    const allowed = this.#grants.get(`${name}:${best.path}`)
    if (allowed !== undefined && (who === undefined || !allowed.has(who))) {
      throw new DrError('E_PRECONDITION', `access denied: ${who ?? 'an anonymous client'} has no rights on link "${best.path}" of namespace "${name}"`, {
        namespace: name,
        link: best.path,
        principal: who ?? null,
      })
    }
    const target = best.targets.find((candidate) => candidate.state === 'active')
    if (target === undefined) {
      throw new DrError('E_NOT_FOUND', `link "${best.path}" of namespace "${name}" has no active target`, { namespace: name, path, link: best.path })
    }
    const remainder = path.slice(best.path === '/' ? 0 : best.path.length)
    return { link: best.path, target: { ...target }, remainder: remainder === '/' ? '' : remainder }
  }

  #checkDistinct(namespace: string, paths: readonly string[]): void {
    const seen = new Set<string>()
    for (const path of paths) {
      if (seen.has(path)) throw new DrError('E_INVALID_INPUT', `namespace "${namespace}" names link "${path}" twice`, { namespace, path })
      seen.add(path)
    }
  }

  #checkTargets(namespace: string, links: readonly NamespaceLink[]): void {
    const bare = links.find((link) => link.targets.length === 0)
    if (bare !== undefined) {
      throw new DrError('E_PRECONDITION', `link "${bare.path}" of namespace "${namespace}" has no target`, { namespace, path: bare.path })
    }
  }

  #checkVersion(namespace: string, given: number): void {
    const current = this.#namespaces.get(namespace)?.version ?? 0
    if (given !== current + 1) {
      throw new DrError('E_CONFLICT', `namespace "${namespace}" is at version ${current}; a write must carry version ${current + 1}, got ${given}`, {
        namespace,
        current,
        given,
      })
    }
  }
}
