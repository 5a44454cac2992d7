import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { NamespaceLink, NamespaceServer, Referral } from '../../ports/network.js'
import type { NamespaceCatalog } from './catalog.js'
import type { NamespaceEventLog } from './event-log.js'
import { linksOf } from './state.js'

interface Slot {
  running?: Promise<number>
  queued?: Promise<number>
}

const WRITE_ATTEMPTS = 5

function linksText(links: readonly NamespaceLink[]): string {
  return JSON.stringify(links.map((link) => [link.path, link.targets.map((t) => [t.site, t.share, t.state])]))
}

/**
 * Pushes drkit's copy of a namespace to the namespace server. A push writes the whole document at the next
 * version (re-reading the server's version after a conflict) and is skipped when nothing changed since the last
 * one. Requests coalesce: while one push runs, every request made meanwhile is served by one more push that
 * starts after it, so a storm of link switches costs a handful of writes, each of which still carries every
 * link with at least one target.
 *
 * @public
 */
export class NamespacePublisher {
  readonly #server: () => NamespaceServer
  readonly #catalog: NamespaceCatalog
  readonly #token: () => FenceToken
  readonly #log: NamespaceEventLog
  readonly #slots = new Map<string, Slot>()
  readonly #known = new Map<string, { version: number; text: string }>()

  constructor(deps: { server: () => NamespaceServer; catalog: NamespaceCatalog; token: () => FenceToken; log: NamespaceEventLog }) {
    this.#server = deps.server
    this.#catalog = deps.catalog
    this.#token = deps.token
    this.#log = deps.log
  }

  /**
   * Resolves with the server version once a push that includes every change committed before this call has
   * been written (or found unnecessary). `force` re-reads the server first, to repair drift.
   */
  request(namespace: string, force = false): Promise<number> {
    if (force) this.#known.delete(namespace)
    let slot = this.#slots.get(namespace)
    if (slot === undefined) {
      slot = {}
      this.#slots.set(namespace, slot)
    }
    const current = slot
    if (current.queued !== undefined) return current.queued
    const previous = current.running ?? Promise.resolve(0)
    const queued = previous
      .catch(() => 0)
      .then(() => {
        delete current.queued
        const running = this.#push(namespace)
        current.running = running
        return running.finally(() => {
          if (current.running === running) delete current.running
        })
      })
    current.queued = queued
    return queued
  }

  /** The server's copy of `namespace`. */
  async read(namespace: string): Promise<readonly NamespaceLink[]> {
    const server = this.#server()
    return (await callAdapter('namespaceServer', 'readNamespace', () => server.readNamespace(namespace))).links
  }

  /** Where the namespace server refers a client resolving `logicalPath`. */
  async resolve(namespace: string, logicalPath: string): Promise<Referral> {
    const server = this.#server()
    return callAdapter('namespaceServer', 'resolve', () => server.resolve(namespace, logicalPath))
  }

  async #push(namespace: string): Promise<number> {
    const links: NamespaceLink[] = linksOf(this.#catalog.state, namespace).map((node) => ({
      path: node.path,
      targets: node.targets.map((target) => ({ site: target.site, share: target.share, state: target.state })),
    }))
    const text = linksText(links)
    const server = this.#server()
    let known = this.#known.get(namespace)
    for (let attempt = 1; ; attempt++) {
      if (known === undefined) {
        const document = await callAdapter('namespaceServer', 'readNamespace', () => server.readNamespace(namespace))
        known = { version: document.version, text: linksText(document.links) }
        this.#known.set(namespace, known)
      }
      if (known.text === text) return known.version
      const version = known.version + 1
      try {
        await callAdapter('namespaceServer', 'writeNamespace', () => server.writeNamespace({ namespace, version, links }, this.#token()))
      } catch (error) {
        this.#known.delete(namespace)
        known = undefined
        if (isDrError(error, 'E_CONFLICT') && attempt < WRITE_ATTEMPTS) continue
        throw error
      }
      this.#known.set(namespace, { version, text })
      this.#log.emit('namespace.pushed', 'info', { namespace, version })
      return version
    }
  }
}
