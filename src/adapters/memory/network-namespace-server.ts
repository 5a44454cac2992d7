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

const NamespaceDocumentCodec = t.type(
  {
    namespace: NonEmptyText,
    version: NonNegativeInt,
    links: t.array(t.type({ path: t.string, targets: t.array(LinkTargetCodec) })),
  },
  'NamespaceDocument',
)

/**
 * Puts a logical path in the one form links are stored and matched in: `/`-separated (a `\` counts as a
 * separator too), a leading `/`, no empty or `.` segments and no trailing `/`; the root is `/`.
 */
function normaliseNamespacePath(path: string): string {
  const segments = path.split(/[\\/]+/).filter((segment) => segment !== '' && segment !== '.')
  return `/${segments.join('/')}`
}

function linkCovers(linkPath: string, path: string): boolean {
  return linkPath === '/' || path === linkPath || path.startsWith(`${linkPath}/`)
}

/**
 * An in-memory DFS-like namespace server: versioned namespace documents, written under a fence token with
 * optimistic concurrency, and referrals by the longest matching link. Documents are copied in and out, so a
 * caller never shares an object with the server. One is shared by every port of a memory network fabric; it
 * can also be used on its own.
 *
 * @public
 */
export class MemoryNamespaceServer implements NamespaceServer {
  readonly #guard = new FenceGuard('memory.namespaceServer')
  readonly #documents = new Map<string, NamespaceDocument>()

  async readNamespace(namespace: string): Promise<NamespaceDocument> {
    const name = decode(NonEmptyText, namespace, 'namespace name')
    return structuredClone(this.#documents.get(name) ?? { namespace: name, version: 0, links: [] })
  }

  async presentToken(token: FenceToken): Promise<void> {
    this.#guard.check(token, 'presentToken')
  }

  async writeNamespace(document: NamespaceDocument, token: FenceToken): Promise<void> {
    const input = decode(NamespaceDocumentCodec, document, 'namespace document')
    const links: NamespaceLink[] = input.links.map((link) => ({
      path: normaliseNamespacePath(link.path),
      targets: link.targets.map((target) => ({ site: target.site, share: target.share, state: target.state })),
    }))
    const paths = new Set<string>()
    for (const link of links) {
      if (paths.has(link.path)) {
        throw new DrError('E_INVALID_INPUT', `namespace "${input.namespace}" has two links at "${link.path}"`, {
          namespace: input.namespace,
          path: link.path,
        })
      }
      paths.add(link.path)
    }
    this.#guard.check(token, 'writeNamespace')
    const bare = links.find((link) => link.targets.length === 0)
    if (bare !== undefined) {
      throw new DrError('E_PRECONDITION', `link "${bare.path}" of namespace "${input.namespace}" has no target`, {
        namespace: input.namespace,
        path: bare.path,
      })
    }
    const current = this.#documents.get(input.namespace)?.version ?? 0
    if (input.version !== current + 1) {
      throw new DrError(
        'E_CONFLICT',
        `namespace "${input.namespace}" is at version ${current}; a write must carry version ${current + 1}, got ${input.version}`,
        { namespace: input.namespace, current, given: input.version },
      )
    }
    this.#documents.set(input.namespace, { namespace: input.namespace, version: input.version, links })
  }

  async resolve(namespace: string, logicalPath: string): Promise<Referral> {
    const name = decode(NonEmptyText, namespace, 'namespace name')
    const path = normaliseNamespacePath(decode(t.string, logicalPath, 'logical path'))
    let best: NamespaceLink | undefined
    for (const link of this.#documents.get(name)?.links ?? []) {
      if (linkCovers(link.path, path) && (best === undefined || link.path.length > best.path.length)) best = link
    }
    if (best === undefined) {
      throw new DrError('E_NOT_FOUND', `no link of namespace "${name}" covers "${path}"`, { namespace: name, path })
    }
    const target = best.targets.find((candidate) => candidate.state === 'active')
    if (target === undefined) {
      throw new DrError('E_NOT_FOUND', `link "${best.path}" of namespace "${name}" has no active target`, {
        namespace: name,
        path,
        link: best.path,
      })
    }
    const remainder = path.slice(best.path === '/' ? 0 : best.path.length)
    return { link: best.path, target: { ...target }, remainder: remainder === '/' ? '' : remainder }
  }
}
