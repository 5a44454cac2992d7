import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StateStore } from '../../kernel/state-store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { HostPort } from '../../ports/host.js'
import type { NamespaceServer } from '../../ports/network.js'
import type { StoragePort } from '../../ports/storage.js'
import { NamespaceCatalog } from './catalog.js'
import { SingleFlight, TaskPool } from './concurrency.js'
import { NamespaceEventLog, type NamespaceNotifier } from './event-log.js'
import type { NamespaceEvents } from './events.js'
import { NamespaceFacade } from './facade.js'
import type { MirrorControl } from './mirror-control.js'
import { MirrorStates } from './mirror-states.js'
import { ShareMonitor } from './monitor.js'
import { Prober } from './probe.js'
import { NamespacePublisher } from './publisher.js'
import type { NamespaceRuntime } from './runtime.js'
import { SwitchRunner } from './switch-runner.js'
import { ThresholdMonitor } from './threshold-monitor.js'

/**
 * The state-store stream where namespace events are recorded for `namespace.history`.
 *
 * @public
 */
export const NAMESPACE_EVENTS_STREAM = 'namespace/events'

/**
 * What the namespace module needs from the system: the state store and workflow engine, each site's storage and
 * host ports, the namespace server (a site's `network.namespaceServer`), the mirrors (see `mirrorControlFrom`),
 * where to publish events, the clock and fence token, and optionally a notifier (e-mail/SNMP-style sink), how
 * many probes and failovers may run at once (default 32 and 16) and whether monitoring starts at once (default
 * true).
 *
 * @public
 */
export interface NamespaceModuleDeps {
  readonly stateStore: StateStore
  readonly workflows: WorkflowEngine
  readonly storage: (site: string) => StoragePort
  readonly host: (site: string) => HostPort
  readonly namespaceServer: () => NamespaceServer
  readonly mirrors: MirrorControl
  readonly events: EventSink<NamespaceEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly notify?: NamespaceNotifier
  readonly probeConcurrency?: number
  readonly failoverConcurrency?: number
  readonly monitor?: boolean
}

/**
 * The namespace module as the system holds it: the facade (`dr.namespace`) and `close()`, which stops
 * monitoring and waits for running failovers and recorded events.
 *
 * @public
 */
export interface NamespaceModule {
  readonly facade: NamespaceFacade
  close(): Promise<void>
}

/**
 * Opens the namespace module: replays its catalog, registers its failover and failback workflows on
 * `workflows`, and (unless `monitor: false`) resumes interrupted failovers and starts monitoring. The monitor's
 * failure counts and the threshold monitors' crossings live in memory: after a restart, counting starts afresh
 * and a threshold that is still exceeded raises `namespace.outOfSpace` once more.
 *
 * @public
 */
export async function openNamespaceModule(deps: NamespaceModuleDeps): Promise<NamespaceModule> {
  const catalog = await NamespaceCatalog.open(deps.stateStore)
  const log = new NamespaceEventLog({
    stateStore: deps.stateStore,
    stream: NAMESPACE_EVENTS_STREAM,
    sink: deps.events,
    clock: deps.clock,
    ...(deps.notify === undefined ? {} : { notify: deps.notify }),
  })
  const rt: NamespaceRuntime = {
    catalog,
    publisher: new NamespacePublisher({ server: deps.namespaceServer, catalog, token: deps.token, log }),
    log,
    workflows: deps.workflows,
    storage: deps.storage,
    host: deps.host,
    mirrors: deps.mirrors,
    mirrorStates: new MirrorStates(deps.mirrors),
    prober: new Prober(deps.clock),
    clock: deps.clock,
    token: deps.token,
    flights: new SingleFlight(),
    failovers: new TaskPool(deps.failoverConcurrency ?? 16),
    probeConcurrency: Math.max(1, Math.floor(deps.probeConcurrency ?? 32)),
  }
  const runner = new SwitchRunner(rt)
  const thresholds = new ThresholdMonitor(rt)
  const monitor = new ShareMonitor(rt, runner, thresholds)
  const facade = new NamespaceFacade(rt, runner, monitor)
  if (deps.monitor !== false) {
    void runner.recover().catch(() => undefined)
    monitor.start()
  }
  return {
    facade,
    close: async () => {
      await monitor.stop()
      await runner.idle()
      await log.flush()
    },
  }
}
