import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { NamespaceLink, NamespaceServer, Referral } from '../../ports/network.js'
import type { NamespaceCatalog } from './catalog.js'
import type { NamespaceEventLog } from './event-log.js'
import { isWithin } from './paths.js'
import { nodeAt, type NamespaceJournalEvent, type NamespaceNode } from './state.js'

const WRITE_ATTEMPTS = 5
const DRIFT_SAMPLE = 20

interface Waiter {
  readonly resolve: (version: number) => void
  readonly reject: (error: unknown) => void
}

/** The pushes of one namespace: the links changed since the last push, who waits for the next one, and whether it must be whole. */
interface Lane {
  readonly dirty: Set<string>
  waiters: Waiter[]
  whole: boolean
  scheduled: boolean
  running: boolean
}

function serverLink(node: NamespaceNode): NamespaceLink {
  return { path: node.path, targets: node.targets.map((target) => ({ site: target.site, share: target.share, state: target.state })) }
}

function targetsText(link: NamespaceLink): string {
  return link.targets.map((target) => `${target.site}/${target.share}:${target.state}`).join(',')
}

/**
 * The link paths a committed tree change touched, as they must be pushed: a created, deleted or retargeted link,
 * and every link below a moved node under its old path (to remove) and its new one (to set).
 *
 * @public
 */
export function changedPaths(catalog: NamespaceCatalog, namespace: string, events: readonly NamespaceJournalEvent[]): string[] {
  const paths: string[] = []
  for (const event of events) {
    switch (event.type) {
      case 'node.created':
      case 'node.deleted':
      case 'link.targetsSet':
      case 'link.switched':
        paths.push(event.data.path)
        break
      case 'node.moved':
        for (const path of catalog.index.linkPaths(namespace)) {
          if (!isWithin(path, event.data.to)) continue
          paths.push(path, `${event.data.from}${path.slice(event.data.to.length)}`)
        }
        break
      default:
        break
    }
  }
  return paths
}

/**
 * Pushes drkit's copy of a namespace to the namespace server, link by link. Changed links are marked dirty and
 * written in one versioned patch per push; requests made while a push runs, or in the same turn of the event
 * loop, are served by the next one, so a storm of link switches costs a few patches, each the size of what
 * changed. A version conflict means someone else wrote the server: the publisher re-reads it, raises
 * `namespace.driftDetected` for the links that differ from drkit's copy and that drkit is not changing (it
 * leaves them as the server has them; `push` rewrites the whole document from drkit's copy), and patches again.
 *
 * @public
 */
export class NamespacePublisher {
  readonly #server: () => NamespaceServer
  readonly #catalog: NamespaceCatalog
  readonly #token: () => FenceToken
  readonly #log: NamespaceEventLog
  readonly #lanes = new Map<string, Lane>()
  /** The server version of each namespace as of this publisher's last read or write. */
  readonly #versions = new Map<string, number>()

  constructor(deps: { server: () => NamespaceServer; catalog: NamespaceCatalog; token: () => FenceToken; log: NamespaceEventLog }) {
    this.#server = deps.server
    this.#catalog = deps.catalog
    this.#token = deps.token
    this.#log = deps.log
  }

  /**
   * Resolves with the server version once a push that carries drkit's current copy of every link in `paths` has
   * been written. A path drkit no longer has as a link is removed from the server.
   */
  request(namespace: string, paths: readonly string[]): Promise<number> {
    const lane = this.#lane(namespace)
    for (const path of paths) lane.dirty.add(path)
    return this.#wait(namespace, lane)
  }

  /** Writes drkit's whole copy of `namespace` to the server (re-reading its version first): repairs any drift. */
  pushAll(namespace: string): Promise<number> {
    const lane = this.#lane(namespace)
    lane.whole = true
    this.#versions.delete(namespace)
    return this.#wait(namespace, lane)
  }

  /** The server's copy of `namespace`. */
  async read(namespace: string): Promise<readonly NamespaceLink[]> {
    const server = this.#server()
    return (await callAdapter('namespaceServer', 'readNamespace', () => server.readNamespace(namespace))).links
  }

  /** Where the namespace server refers `principal` (or an anonymous client) resolving `logicalPath`. */
  async resolve(namespace: string, logicalPath: string, principal?: string): Promise<Referral> {
    const server = this.#server()
    return callAdapter('namespaceServer', 'resolve', () => (principal === undefined ? server.resolve(namespace, logicalPath) : server.resolve(namespace, logicalPath, principal)))
  }

  #lane(namespace: string): Lane {
    let lane = this.#lanes.get(namespace)
    if (lane === undefined) {
      lane = { dirty: new Set(), waiters: [], whole: false, scheduled: false, running: false }
      this.#lanes.set(namespace, lane)
    }
    return lane
  }

  #wait(namespace: string, lane: Lane): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      lane.waiters.push({ resolve, reject })
      this.#schedule(namespace, lane)
    })
  }

  /** Starts a push once the current one (if any) ends, after the rest of this turn's requests have joined it. */
  #schedule(namespace: string, lane: Lane): void {
    if (lane.scheduled || lane.running) return
    lane.scheduled = true
    setImmediate(() => {
      lane.scheduled = false
      void this.#flush(namespace, lane)
    })
  }

  async #flush(namespace: string, lane: Lane): Promise<void> {
    lane.running = true
    const paths = [...lane.dirty]
    const whole = lane.whole
    const waiters = lane.waiters
    lane.dirty.clear()
    lane.whole = false
    lane.waiters = []
    try {
      const version = whole ? await this.#writeAll(namespace) : await this.#patch(namespace, paths)
      for (const waiter of waiters) waiter.resolve(version)
    } catch (error) {
      // What could not be pushed stays owed: the next push of this namespace carries it too.
      for (const path of paths) lane.dirty.add(path)
      if (whole) lane.whole = true
      for (const waiter of waiters) waiter.reject(error)
    } finally {
      lane.running = false
      if (lane.waiters.length > 0) this.#schedule(namespace, lane)
    }
  }

  async #patch(namespace: string, paths: readonly string[]): Promise<number> {
    const server = this.#server()
    for (let attempt = 1; ; attempt++) {
      const state = this.#catalog.state
      const set: NamespaceLink[] = []
      const remove: string[] = []
      for (const path of new Set(paths)) {
        const node = nodeAt(state, namespace, path)
        if (node?.kind === 'link') set.push(serverLink(node))
        else remove.push(path)
      }
      const known = this.#versions.get(namespace) ?? (await this.#readAndCompare(namespace, new Set(paths)))
      if (set.length === 0 && remove.length === 0) return known
      const version = known + 1
      try {
        await callAdapter('namespaceServer', 'patchNamespace', () => server.patchNamespace({ namespace, version, set, remove }, this.#token()))
      } catch (error) {
        this.#versions.delete(namespace)
        if (isDrError(error, 'E_CONFLICT') && attempt < WRITE_ATTEMPTS) continue
        throw error
      }
      return this.#written(namespace, version)
    }
  }

  async #writeAll(namespace: string): Promise<number> {
    const server = this.#server()
    for (let attempt = 1; ; attempt++) {
      const known = this.#versions.get(namespace) ?? (await callAdapter('namespaceServer', 'readNamespace', () => server.readNamespace(namespace))).version
      const state = this.#catalog.state
      const links: NamespaceLink[] = []
      for (const path of [...this.#catalog.index.linkPaths(namespace)].sort()) {
        const node = nodeAt(state, namespace, path)
        if (node !== undefined) links.push(serverLink(node))
      }
      const version = known + 1
      try {
        await callAdapter('namespaceServer', 'writeNamespace', () => server.writeNamespace({ namespace, version, links }, this.#token()))
      } catch (error) {
        this.#versions.delete(namespace)
        if (isDrError(error, 'E_CONFLICT') && attempt < WRITE_ATTEMPTS) continue
        throw error
      }
      return this.#written(namespace, version)
    }
  }

  #written(namespace: string, version: number): number {
    this.#versions.set(namespace, version)
    this.#log.emit('namespace.pushed', 'info', { namespace, version })
    return version
  }

  /**
   * Reads the server's copy (first contact, or after someone else wrote it), reports the links that differ from
   * drkit's copy other than those in `changing` or being switched by a failover or failback (whose push may still
   * be on its way), and returns the server's version.
   */
  async #readAndCompare(namespace: string, changing: ReadonlySet<string>): Promise<number> {
    const server = this.#server()
    const document = await callAdapter('namespaceServer', 'readNamespace', () => server.readNamespace(namespace))
    const state = this.#catalog.state
    const settled = (path: string): boolean => {
      const dp = nodeAt(state, namespace, path)?.protection?.state
      return !changing.has(path) && dp !== 'failingOver' && dp !== 'failingBack'
    }
    const drifted = new Set<string>()
    const onServer = new Set<string>()
    for (const link of document.links) {
      onServer.add(link.path)
      if (!settled(link.path)) continue
      const node = nodeAt(state, namespace, link.path)
      if (node?.kind !== 'link' || targetsText(serverLink(node)) !== targetsText(link)) drifted.add(link.path)
    }
    for (const path of this.#catalog.index.linkPaths(namespace)) if (!onServer.has(path) && settled(path)) drifted.add(path)
    if (drifted.size > 0) {
      const paths = [...drifted].sort()
      this.#log.emit('namespace.driftDetected', 'warning', { namespace, version: document.version, links: paths.length, paths: paths.slice(0, DRIFT_SAMPLE) })
    }
    this.#versions.set(namespace, document.version)
    return document.version
  }
}
