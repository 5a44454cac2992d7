import { decideDpTransition } from './decide-protection.js'
import type { ProbeFailure } from './events.js'
import { probeDestination, probePrimary, type ProbeOutcome } from './probe.js'
import type { PolicyRecord } from './policy.js'
import type { NamespaceRuntime } from './runtime.js'
import { allNodes, type NamespaceNode, type Protection } from './state.js'
import type { SwitchRunner } from './switch-runner.js'
import type { ThresholdMonitor } from './threshold-monitor.js'

/** DP states in which the primary share of a link is watched. */
const WATCHED = new Set(['protected', 'protectionDisabled', 'failoverRequired', 'failoverError'])

interface WatchedLink {
  readonly node: NamespaceNode
  readonly protection: Protection
  readonly policy: PolicyRecord
}

interface ShareHealth {
  failures: number
  firstFailureAt: number
  declared: boolean
  nextDue: number
}

/**
 * What one monitoring pass did: how many primary and destination shares it probed, how many primary probes
 * failed, which primary shares it declared inaccessible, and how many failovers it started.
 *
 * @public
 */
export interface MonitorPass {
  readonly probed: number
  readonly failed: number
  readonly declared: readonly string[]
  readonly failoversStarted: number
}

function shareKey(site: string, share: string): string {
  return `${site}/${share}`
}

/**
 * The data-protection monitor: probes each protected primary share at the share level (once per share, however
 * many links it backs, with the strictest settings of their policies), counts consecutive failures, and declares
 * the share inaccessible once a link's policy says so (its number of consecutive failed probes, or its overall
 * timer since the first failure). It then fails the share's links over (automatic policies) or marks them
 * `failoverRequired`. It heartbeats destination shares too and disables and re-enables protection as they come
 * and go. Probes run with bounded concurrency; one timer drives every link.
 *
 * @public
 */
export class ShareMonitor {
  readonly #rt: NamespaceRuntime
  readonly #runner: SwitchRunner
  readonly #thresholds: ThresholdMonitor
  readonly #health = new Map<string, ShareHealth>()
  #timer: (() => void) | undefined
  #running: Promise<MonitorPass> | undefined
  #started = false

  /** @param thresholds - the threshold monitors, evaluated by the same passes when they are due */
  constructor(rt: NamespaceRuntime, runner: SwitchRunner, thresholds: ThresholdMonitor) {
    this.#rt = rt
    this.#runner = runner
    this.#thresholds = thresholds
  }

  /** Starts probing on the policies' intervals (idempotent). */
  start(): void {
    if (this.#started) return
    this.#started = true
    this.#schedule(0)
  }

  /** Stops the timer; a pass already running finishes. */
  async stop(): Promise<void> {
    this.#started = false
    this.#timer?.()
    this.#timer = undefined
    await this.#running?.catch(() => undefined)
  }

  /** Runs one pass now over the shares that are due (`all`: every watched share, due or not), then the due thresholds. */
  pass(all: boolean): Promise<MonitorPass> {
    const previous = this.#running ?? Promise.resolve(undefined)
    const run = previous.catch(() => undefined).then(() => this.#pass(all))
    this.#running = run
    return run.finally(() => {
      if (this.#running === run) this.#running = undefined
    })
  }

  /**
   * Handles an "inaccessible" status report for a primary share (as a remote agent would send it): the share is
   * declared inaccessible at once for every link it backs. Links already failed over are left alone.
   */
  async report(site: string, share: string): Promise<MonitorPass> {
    const links = this.#watched().filter((link) => link.protection.primary.site === site && link.protection.primary.share === share)
    const health = this.#healthOf(shareKey(site, share))
    health.failures += 1
    if (health.failures === 1) health.firstFailureAt = this.#rt.clock.now()
    const started = await this.#declare(site, share, links, 'reported', health, true)
    return { probed: 0, failed: 0, declared: links.length > 0 ? [shareKey(site, share)] : [], failoversStarted: started }
  }

  #schedule(delay: number): void {
    if (!this.#started) return
    this.#timer = this.#rt.clock.setTimer(delay, () => {
      this.#timer = undefined
      void this.pass(false)
        .catch(() => undefined)
        .finally(() => this.#schedule(this.#nextDelay()))
    })
  }

  #nextDelay(): number {
    const now = this.#rt.clock.now()
    let next = Math.min(now + 60_000, this.#thresholds.nextDue() ?? Number.POSITIVE_INFINITY)
    for (const link of this.#watched()) {
      const due = this.#health.get(shareKey(link.protection.primary.site, link.protection.primary.share))?.nextDue ?? now
      if (due < next) next = due
    }
    return Math.max(0, next - now)
  }

  #watched(): WatchedLink[] {
    const state = this.#rt.catalog.state
    const result: WatchedLink[] = []
    for (const node of allNodes(state)) {
      const protection = node.protection
      if (protection === null || !WATCHED.has(protection.state)) continue
      const policy = state.policies[protection.policy]
      if (policy !== undefined) result.push({ node, protection, policy })
    }
    return result
  }

  #healthOf(key: string): ShareHealth {
    let health = this.#health.get(key)
    if (health === undefined) {
      health = { failures: 0, firstFailureAt: 0, declared: false, nextDue: 0 }
      this.#health.set(key, health)
    }
    return health
  }

  async #pass(all: boolean): Promise<MonitorPass> {
    const now = this.#rt.clock.now()
    const byShare = new Map<string, WatchedLink[]>()
    for (const link of this.#watched()) {
      const key = shareKey(link.protection.primary.site, link.protection.primary.share)
      const group = byShare.get(key)
      if (group === undefined) byShare.set(key, [link])
      else group.push(link)
    }
    for (const key of [...this.#health.keys()]) if (!byShare.has(key)) this.#health.delete(key)
    const due = [...byShare].filter(([key]) => all || this.#healthOf(key).nextDue <= now)
    let failed = 0
    let failoversStarted = 0
    const declared: string[] = []
    await this.#bounded(due, async ([key, links]) => {
      const first = links[0]
      if (first === undefined) return
      const { site, share } = first.protection.primary
      const access = [...new Set(links.flatMap((link) => link.policy.access))]
      const timeout = Math.min(...links.map((link) => link.policy.probeTimeoutMs))
      const health = this.#healthOf(key)
      health.nextDue = now + Math.min(...links.map((link) => link.policy.probeIntervalMs))
      const outcome = await probePrimary(this.#rt.storage(site), share, access, timeout, this.#rt.clock)
      if (outcome.ok) return this.#recovered(site, share, links, health)
      failed += 1
      health.failures += 1
      if (health.failures === 1) health.firstFailureAt = now
      const before = health.declared
      const started = await this.#declare(site, share, links, outcome.failure, health, false)
      failoversStarted += started
      if (health.declared && !before) declared.push(key)
    })
    const destinations = [...byShare.values()].flat().filter((link) => link.protection.state === 'protected' || link.protection.state === 'protectionDisabled')
    await this.#bounded(destinations, (link) => this.#heartbeat(link))
    await this.#thresholds.runDue()
    return { probed: due.length + destinations.length, failed, declared, failoversStarted }
  }

  async #bounded<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
    let next = 0
    const lanes = Array.from({ length: Math.min(this.#rt.probeConcurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T
        await work(item)
      }
    })
    await Promise.all(lanes)
  }

  /** Whether `link`'s policy declares the share inaccessible after the failures seen so far. */
  #exhausted(link: WatchedLink, health: ShareHealth): boolean {
    const { failuresBeforeInaccessible, inaccessibleAfterMs } = link.policy
    if (health.failures >= failuresBeforeInaccessible) return true
    return inaccessibleAfterMs !== null && this.#rt.clock.now() - health.firstFailureAt >= inaccessibleAfterMs
  }

  async #declare(site: string, share: string, links: readonly WatchedLink[], reason: ProbeFailure | 'reported', health: ShareHealth, force: boolean): Promise<number> {
    const ready = links.filter((link) => force || this.#exhausted(link, health))
    if (ready.length === 0) return 0
    if (!health.declared || force) {
      this.#rt.log.emit('namespace.shareInaccessible', 'critical', {
        site,
        share,
        reason,
        failures: health.failures,
        links: ready.map((link) => link.node.path),
      })
    }
    health.declared = true
    let started = 0
    for (const link of ready) {
      const { namespace, path } = link.node
      const state = link.protection.state
      if (state === 'failoverRequired' || state === 'failoverError') continue
      if (link.policy.automaticFailover && state === 'protected') {
        started += 1
        void this.#runner.failover(namespace, path, { manual: false, reason: `primary share ${site}/${share} is inaccessible (${reason})` }).catch(() => undefined)
        continue
      }
      const why = state === 'protectionDisabled' ? 'the destination share is inaccessible' : `policy "${link.policy.name}" does not fail over automatically`
      const changed = await this.#rt.catalog.execute((s) => decideDpTransition(s, namespace, path, ['protected', 'protectionDisabled'], 'failoverRequired', this.#rt.clock.now(), why))
      if (changed.length > 0) this.#rt.log.emit('namespace.failoverRequired', 'critical', { namespace, path, primary: { site, share }, reason: why })
    }
    return started
  }

  async #recovered(site: string, share: string, links: readonly WatchedLink[], health: ShareHealth): Promise<void> {
    const wasDeclared = health.declared
    health.failures = 0
    health.declared = false
    if (!wasDeclared) return
    this.#rt.log.emit('namespace.shareRecovered', 'info', { site, share, links: links.map((link) => link.node.path) })
    for (const link of links) {
      const { namespace, path } = link.node
      await this.#rt.catalog.execute((s) => decideDpTransition(s, namespace, path, ['failoverRequired', 'failoverError'], 'protected', this.#rt.clock.now()))
    }
  }

  async #heartbeat(link: WatchedLink): Promise<void> {
    const { destination } = link.protection
    const { namespace, path } = link.node
    const outcome: ProbeOutcome = await probeDestination(this.#rt.storage(destination.site), destination.share, destination.volume, link.policy.probeTimeoutMs, this.#rt.clock)
    const ref = { site: destination.site, share: destination.share }
    const now = this.#rt.clock.now()
    if (!outcome.ok && link.protection.state === 'protected') {
      const changed = await this.#rt.catalog.execute((s) => decideDpTransition(s, namespace, path, ['protected'], 'protectionDisabled', now, outcome.detail))
      if (changed.length > 0) this.#rt.log.emit('namespace.protectionDisabled', 'warning', { namespace, path, destination: ref, reason: outcome.detail })
    } else if (outcome.ok && link.protection.state === 'protectionDisabled') {
      const changed = await this.#rt.catalog.execute((s) => decideDpTransition(s, namespace, path, ['protectionDisabled'], 'protected', now))
      if (changed.length > 0) this.#rt.log.emit('namespace.protectionEnabled', 'info', { namespace, path, destination: ref })
    }
  }
}
