import type { Clock } from '../../kernel/clock.js'
import type { HookRequest, HookResult } from '../../ports/host.js'
import type { HostDefinition } from '../../ports/host-codecs.js'

/**
 * How a memory VM answers `quiesce`: `ok` (application-consistent), `fail` (the applications could not
 * quiesce: the result says it is not application-consistent) or `hang` (no answer: `E_TIMEOUT` after the
 * request's timeout).
 *
 * @public
 */
export type QuiesceBehaviour = 'ok' | 'fail' | 'hang'

/**
 * An I/O actor (a process or a VM doing I/O to volumes) that a test places on a {@link MemoryHost}.
 *
 * @public
 */
export interface ActorDefinition {
  readonly id: string
  readonly kind: 'process' | 'vm'
  readonly volumes: readonly string[]
  readonly pid?: number
}

/**
 * What a {@link MemoryHost} runs instead of a hook script: it gets the request and says what the script did.
 *
 * @public
 */
export type HookHandler = (request: HookRequest) => HookResult | Promise<HookResult>

/**
 * Options of {@link memoryHost}: the hosts it starts with, the clock timeouts and latency run on (default:
 * the system clock) and a latency added to every call (default 0).
 *
 * @public
 */
export interface MemoryHostOptions {
  readonly hosts?: readonly HostDefinition[]
  readonly clock?: Clock
  readonly latencyMs?: number
}
