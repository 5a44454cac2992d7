import { isWithin, nodeKey } from './paths.js'
import { allNodes, nodeAt, type NamespaceJournalEvent, type NamespaceNode, type NamespaceState } from './state.js'

function shareKey(site: string, share: string): string {
  return `${site}/${share}`
}

function setOf<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let set = map.get(key)
  if (set === undefined) {
    set = new Set()
    map.set(key, set)
  }
  return set
}

function drop<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key)
  if (set === undefined) return
  set.delete(value)
  if (set.size === 0) map.delete(key)
}

/**
 * Indexes over drkit's copy of the namespaces, kept up to date from the catalog's committed events so that no
 * hot path scans every node: the link paths of each namespace, and the protected links of each primary share
 * (what the monitor probes, and what an "inaccessible" report for a share concerns).
 *
 * @public
 */
export class CatalogIndex {
  readonly #links = new Map<string, Set<string>>()
  readonly #byPrimary = new Map<string, Set<string>>()
  /** The primary share key of each protected link, by node key. */
  readonly #primaryOf = new Map<string, string>()

  /** Builds the index of `state` from scratch (once, when the catalog opens). */
  constructor(state: NamespaceState) {
    for (const node of allNodes(state)) {
      if (node.kind !== 'link') continue
      setOf(this.#links, node.namespace).add(node.path)
      if (node.protection !== null) this.#protect(node.namespace, node.path, node.protection.primary)
    }
  }

  /** Follows committed events (`state` is the state after all of them). */
  apply(events: readonly NamespaceJournalEvent[], state: NamespaceState): void {
    for (const event of events) {
      switch (event.type) {
        case 'namespace.created':
          for (const link of event.data.links) setOf(this.#links, event.data.namespace).add(link.path)
          break
        case 'node.created':
          if (event.data.kind === 'link') setOf(this.#links, event.data.namespace).add(event.data.path)
          break
        case 'node.moved':
          this.#move(event.data.namespace, event.data.from, event.data.to, state)
          break
        case 'node.deleted':
          drop(this.#links, event.data.namespace, event.data.path)
          this.#unprotect(event.data.namespace, event.data.path)
          break
        case 'link.protected':
          this.#protect(event.data.namespace, event.data.path, event.data.protection.primary)
          break
        case 'link.unprotected':
          this.#unprotect(event.data.namespace, event.data.path)
          break
        default:
          break
      }
    }
  }

  /** The link paths of `namespace`, in no particular order. */
  linkPaths(namespace: string): readonly string[] {
    return [...(this.#links.get(namespace) ?? [])]
  }

  /** The protected links whose primary share is `site`/`share`, in path order. */
  linksOnPrimary(state: NamespaceState, site: string, share: string): NamespaceNode[] {
    return this.#nodes(state, this.#byPrimary.get(shareKey(site, share)))
  }

  /** Every primary share of a protected link (`site/share`) with its links in path order. */
  *primaries(state: NamespaceState): Generator<readonly [string, NamespaceNode[]]> {
    for (const [share, keys] of this.#byPrimary) yield [share, this.#nodes(state, keys)]
  }

  #nodes(state: NamespaceState, keys: ReadonlySet<string> | undefined): NamespaceNode[] {
    const nodes: NamespaceNode[] = []
    for (const key of keys ?? []) {
      const at = key.indexOf(':')
      const node = nodeAt(state, key.slice(0, at), key.slice(at + 1))
      if (node !== undefined) nodes.push(node)
    }
    return nodes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  #protect(namespace: string, path: string, primary: { site: string; share: string }): void {
    const key = nodeKey(namespace, path)
    this.#unprotect(namespace, path)
    const share = shareKey(primary.site, primary.share)
    this.#primaryOf.set(key, share)
    setOf(this.#byPrimary, share).add(key)
  }

  #unprotect(namespace: string, path: string): void {
    const key = nodeKey(namespace, path)
    const share = this.#primaryOf.get(key)
    if (share === undefined) return
    this.#primaryOf.delete(key)
    drop(this.#byPrimary, share, key)
  }

  #move(namespace: string, from: string, to: string, state: NamespaceState): void {
    const links = this.#links.get(namespace)
    if (links === undefined) return
    for (const path of [...links]) {
      if (!isWithin(path, from)) continue
      const moved = `${to}${path.slice(from.length)}`
      links.delete(path)
      links.add(moved)
      const protection = nodeAt(state, namespace, moved)?.protection
      this.#unprotect(namespace, path)
      if (protection !== null && protection !== undefined) this.#protect(namespace, moved, protection.primary)
    }
  }
}
