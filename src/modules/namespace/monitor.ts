import { decideDpTransition } from './decide-protection.js'
import type { ProbeFailure } from './events.js'
import { mirrorReturnedTo, type MirrorDescription } from './mirror-control.js'
import type { ProbeOutcome } from './probe.js'
import type { PolicyRecord } from './policy.js'
import type { NamespaceRuntime } from './runtime.js'
import type { NamespaceNode, Protection } from './state.js'
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
  /** The share answered after being declared, but some waiting link's mirror did not protect it then. */
  restoring: boolean
  nextDue: number
}

/**
 * What one monitoring pass did: how many primary and destination shares it probed, how many primary shares
 * answered as required (the seed's "accessible" status reports) and how many did not, which primary shares it
 * declared inaccessible, and how many failovers it started.
 *
 * @public
 */
export interface MonitorPass {
  readonly probed: number
  readonly accessible: number
  readonly failed: number
  readonly declared: readonly string[]
  readonly failoversStarted: number
}

/** The probe interval of a share: the shortest of the policies of the links it backs. */
function probeInterval(links: readonly WatchedLink[]): number {
  return Math.min(...links.map((link) => link.policy.probeIntervalMs))
}

function shareKey(site: string, share: string): string {
  return `${site}/${share}`
}

/**
 * The data-protection monitor: probes each protected primary share at the share level (once per share, however
 * many links it backs, with the strictest settings of their policies), counts consecutive failures, and declares
 * the share inaccessible once a link's policy says so (its number of consecutive failed probes, or its overall
 * timer since the first failure). It then fails the share's links over (automatic policies) or marks them
 * `failoverRequired`. It heartbeats destination shares in the same passes and disables and re-enables protection
 * as they come and go. Probes run with bounded concurrency; one timer drives every link. Its counts live in
 * memory: a restarted coordinator starts counting afresh.
 *
 * @public
 */
export class ShareMonitor {
  readonly #rt: NamespaceRuntime
  readonly #runner: SwitchRunner
  readonly #thresholds: ThresholdMonitor
  readonly #health = new Map<string, ShareHealth>()
  #timer: (() => void) | undefined
  #timerDueAt = Number.POSITIVE_INFINITY
  #running: Promise<MonitorPass> | undefined
  #started = false
  #stopWatching: (() => void) | undefined

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
    // A new protected link or a policy change may make a share due before the timer: probe it on time.
    this.#stopWatching = this.#rt.catalog.onCommitted((events) => {
      if (events.some((event) => event.type === 'link.protected' || event.type === 'policy.saved')) this.#wake()
    })
    this.#schedule(0)
  }

  /** Stops the timer; a pass already running finishes. */
  async stop(): Promise<void> {
    this.#started = false
    this.#stopWatching?.()
    this.#stopWatching = undefined
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
    const links = this.#watched(this.#rt.catalog.index.linksOnPrimary(this.#rt.catalog.state, site, share))
    const health = this.#healthOf(shareKey(site, share))
    health.failures += 1
    if (health.failures === 1) health.firstFailureAt = this.#rt.clock.now()
    const started = await this.#declare(site, share, links, 'reported', health, true)
    return { probed: 0, accessible: 0, failed: 0, declared: links.length > 0 ? [shareKey(site, share)] : [], failoversStarted: started }
  }

  /** Brings the next pass forward to now, unless one is due now already or running. */
  #wake(): void {
    if (!this.#started || this.#timer === undefined || this.#timerDueAt <= this.#rt.clock.now()) return
    this.#timer()
    this.#schedule(0)
  }

  #schedule(delay: number): void {
    if (!this.#started) return
    this.#timerDueAt = this.#rt.clock.now() + delay
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
    for (const health of this.#health.values()) if (health.nextDue < next) next = health.nextDue
    return Math.max(0, next - now)
  }

  #watched(nodes: readonly NamespaceNode[]): WatchedLink[] {
    const policies = this.#rt.catalog.state.policies
    const result: WatchedLink[] = []
    for (const node of nodes) {
      const protection = node.protection
      if (protection === null || !WATCHED.has(protection.state)) continue
      const policy = policies[protection.policy]
      if (policy !== undefined) result.push({ node, protection, policy })
    }
    return result
  }

  #healthOf(key: string): ShareHealth {
    let health = this.#health.get(key)
    if (health === undefined) {
      health = { failures: 0, firstFailureAt: 0, declared: false, restoring: false, nextDue: 0 }
      this.#health.set(key, health)
    }
    return health
  }

  async #pass(all: boolean): Promise<MonitorPass> {
    const now = this.#rt.clock.now()
    const byShare = new Map<string, WatchedLink[]>()
    for (const [key, nodes] of this.#rt.catalog.index.primaries(this.#rt.catalog.state)) {
      const watched = this.#watched(nodes)
      if (watched.length > 0) byShare.set(key, watched)
    }
    for (const key of [...this.#health.keys()]) if (!byShare.has(key)) this.#health.delete(key)
    const due = [...byShare].filter(([key, links]) => {
      const health = this.#healthOf(key)
      // A policy edit that shortened the interval applies from now, not after the old interval ran out.
      health.nextDue = Math.min(health.nextDue, now + probeInterval(links))
      return all || health.nextDue <= now
    })
    const counts = { accessible: 0, failed: 0, failoversStarted: 0 }
    const declared: string[] = []
    await this.#bounded(due, async ([key, links]) => {
      const first = links[0]
      if (first === undefined) return
      const { site, share } = first.protection.primary
      const health = this.#healthOf(key)
      health.nextDue = now + probeInterval(links)
      const access = [...new Set(links.flatMap((link) => link.policy.access))]
      const timeout = Math.min(...links.map((link) => link.policy.probeTimeoutMs))
      const outcome = await this.#rt.prober.primary(() => this.#rt.storage(site), site, share, access, timeout)
      if (outcome.ok) {
        counts.accessible += 1
        return this.#recovered(site, share, links, health)
      }
      counts.failed += 1
      health.failures += 1
      if (health.failures === 1) health.firstFailureAt = now
      const before = health.declared
      const started = await this.#declare(site, share, links, outcome.failure, health, false)
      counts.failoversStarted += started
      if (health.declared && !before) declared.push(key)
    })
    const settled = new Set(declared)
    const heartbeats = due
      .filter(([key]) => !settled.has(key))
      .flatMap(([, links]) => links)
      .filter((link) => link.protection.state === 'protected' || link.protection.state === 'protectionDisabled')
    const destinations = await this.#heartbeats(heartbeats)
    await this.#thresholds.runDue()
    return { probed: due.length + destinations, ...counts, declared }
  }

  /** Runs `work` over `items` with at most `probeConcurrency` at once; a failing item never stops the others. */
  async #bounded<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
    let next = 0
    const lanes = Array.from({ length: Math.min(this.#rt.probeConcurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T
        // One share's trouble (its catalog commit, its failover's start) must not stop the pass; the next pass retries.
        await work(item).catch(() => undefined)
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

  /**
   * A primary share answers: its failure count resets, and if it had been declared inaccessible
   * (`namespace.shareRecovered`), links waiting for an operator become `protected` again — but only where their
   * mirror still replicates from that primary (a mirror failed over meanwhile no longer protects it; such a link
   * waits on, and is checked again at the next answer).
   */
  async #recovered(site: string, share: string, links: readonly WatchedLink[], health: ShareHealth): Promise<void> {
    const wasDeclared = health.declared
    health.failures = 0
    health.declared = false
    if (wasDeclared) this.#rt.log.emit('namespace.shareRecovered', 'info', { site, share, links: links.map((link) => link.node.path) })
    if (!wasDeclared && !health.restoring) return
    health.restoring = false
    const mirrors = new Map<string, Promise<MirrorDescription>>()
    for (const link of links) {
      const { namespace, path } = link.node
      const { mirrorId, primary } = link.protection
      if (link.protection.state !== 'failoverRequired' && link.protection.state !== 'failoverError') continue
      let mirror = mirrors.get(mirrorId)
      if (mirror === undefined) {
        mirror = this.#rt.mirrors.describe(mirrorId)
        mirrors.set(mirrorId, mirror)
      }
      const protects = await mirror.then((m) => mirrorReturnedTo(m, { site: primary.site, volume: primary.volume })).catch(() => false)
      if (!protects) {
        health.restoring = true
        continue
      }
      await this.#rt.catalog.execute((s) => decideDpTransition(s, namespace, path, ['failoverRequired', 'failoverError'], 'protected', this.#rt.clock.now()))
    }
  }

  /** Heartbeats the destination shares of `links` (each share once) and disables or re-enables their protection; returns how many shares it probed. */
  async #heartbeats(links: readonly WatchedLink[]): Promise<number> {
    const byDestination = new Map<string, WatchedLink[]>()
    for (const link of links) {
      const key = shareKey(link.protection.destination.site, link.protection.destination.share)
      const group = byDestination.get(key)
      if (group === undefined) byDestination.set(key, [link])
      else group.push(link)
    }
    const volumes = new Map<string, Promise<ProbeOutcome>>()
    await this.#bounded([...byDestination.values()], async (group) => {
      const first = group[0]
      if (first === undefined) return
      const { site, share, volume } = first.protection.destination
      const timeout = Math.min(...group.map((link) => link.policy.probeTimeoutMs))
      const outcome = await this.#rt.prober.destination(() => this.#rt.storage(site), site, share, volume, timeout, volumes)
      for (const link of group) await this.#heartbeat(link, outcome).catch(() => undefined)
    })
    return byDestination.size
  }

  async #heartbeat(link: WatchedLink, outcome: ProbeOutcome): Promise<void> {
    const { destination } = link.protection
    const { namespace, path } = link.node
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
