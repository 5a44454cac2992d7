import { DrError } from '../kernel/errors.js'
import { systemClock, type Clock } from '../kernel/clock.js'

/**
 * One call that went through a {@link FaultInjector}: the method (dotted for nested objects, e.g.
 * `namespaceServer.resolve`), its 1-based number among calls of that method, its arguments, and what happened.
 *
 * @public
 */
export interface InjectedCall {
  readonly method: string
  readonly nth: number
  readonly args: readonly unknown[]
  outcome: 'pending' | 'ok' | 'failed'
}

/**
 * A rule that makes matching calls fail. `method` restricts it to one method; `nth` to the n-th call of that
 * method; `when` to calls the predicate accepts; `times` bounds how often it fires (default: once for `nth`,
 * always otherwise). `error` is what the call rejects with (default `E_ADAPTER`).
 *
 * @public
 */
export interface FaultRule {
  readonly method?: string
  readonly nth?: number
  readonly when?: (call: InjectedCall) => boolean
  readonly times?: number
  readonly error?: DrError
  /** When true, the real call runs first and only its result is replaced by the error (a lost reply). */
  readonly afterEffect?: boolean
}

interface ActiveRule {
  readonly rule: FaultRule
  remaining: number
}

/**
 * Wraps any adapter so that tests can make it slow, fail on the n-th call or by predicate, or crash (every
 * later call fails until `restart()`). The wrapped adapter is `injector.port`; it has the same type as the
 * original, so modules cannot tell it apart. Every call is logged in `calls`.
 *
 * @public
 */
export class FaultInjector<P extends object> {
  /** The wrapped adapter to hand to drkit. */
  readonly port: P
  /** Every call made through the wrapper, in order. */
  readonly calls: InjectedCall[] = []
  readonly #name: string
  readonly #clock: Clock
  readonly #counts = new Map<string, number>()
  #rules: ActiveRule[] = []
  #latency: (call: InjectedCall) => number = () => 0
  #crashed = false

  constructor(target: P, options: { name: string; clock?: Clock }) {
    this.#name = options.name
    this.#clock = options.clock ?? systemClock
    this.port = this.#wrap(target, '')
  }

  /** Adds a failure rule; returns a function that removes it. */
  fail(rule: FaultRule): () => void {
    const active: ActiveRule = { rule, remaining: rule.times ?? (rule.nth === undefined ? Infinity : 1) }
    this.#rules.push(active)
    return () => {
      this.#rules = this.#rules.filter((r) => r !== active)
    }
  }

  /** Delays every call by `ms` (or by what the function says for each call) on the injector's clock. */
  setLatency(ms: number | ((call: InjectedCall) => number)): void {
    this.#latency = typeof ms === 'number' ? () => ms : ms
  }

  /** Simulates the adapter's process or node dying: every later call rejects with `E_UNAVAILABLE`. */
  crash(): void {
    this.#crashed = true
  }

  /** Brings a crashed adapter back. */
  restart(): void {
    this.#crashed = false
  }

  /** Removes every rule and latency, and forgets the call log. */
  reset(): void {
    this.#rules = []
    this.#latency = () => 0
    this.#crashed = false
    this.calls.length = 0
    this.#counts.clear()
  }

  /** How many calls of `method` were made (all methods when omitted). */
  count(method?: string): number {
    return method === undefined ? this.calls.length : (this.#counts.get(method) ?? 0)
  }

  #wrap<T extends object>(target: T, prefix: string): T {
    const nested = new Map<PropertyKey, object>()
    return new Proxy(target, {
      get: (object, property, receiver) => {
        const value: unknown = Reflect.get(object, property, receiver)
        if (typeof property !== 'string') return value
        if (typeof value === 'function') {
          return (...args: unknown[]) => this.#invoke(`${prefix}${property}`, args, () => (value as (...a: unknown[]) => unknown).apply(object, args))
        }
        if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Array.isArray(value)) {
          let wrapped = nested.get(property)
          if (wrapped === undefined) {
            wrapped = this.#wrap(value, `${prefix}${property}.`)
            nested.set(property, wrapped)
          }
          return wrapped
        }
        return value
      },
    })
  }

  async #invoke(method: string, args: unknown[], call: () => unknown): Promise<unknown> {
    const nth = (this.#counts.get(method) ?? 0) + 1
    this.#counts.set(method, nth)
    const record: InjectedCall = { method, nth, args, outcome: 'pending' }
    this.calls.push(record)
    try {
      const delay = this.#latency(record)
      if (delay > 0) await this.#clock.sleep(delay)
      if (this.#crashed) throw new DrError('E_UNAVAILABLE', `${this.#name}.${method}: adapter crashed (injected)`, { adapter: this.#name, method })
      const rule = this.#matchingRule(record)
      if (rule !== undefined && rule.afterEffect !== true) throw this.#errorOf(rule, method)
      const result = await call()
      if (rule !== undefined) throw this.#errorOf(rule, method)
      record.outcome = 'ok'
      return result
    } catch (error) {
      record.outcome = 'failed'
      throw error
    }
  }

  #matchingRule(call: InjectedCall): FaultRule | undefined {
    for (const active of this.#rules) {
      const { rule } = active
      if (active.remaining <= 0) continue
      if (rule.method !== undefined && rule.method !== call.method) continue
      if (rule.nth !== undefined && rule.nth !== call.nth) continue
      if (rule.when !== undefined && !rule.when(call)) continue
      active.remaining--
      return rule
    }
    return undefined
  }

  #errorOf(rule: FaultRule, method: string): DrError {
    return rule.error ?? new DrError('E_ADAPTER', `${this.#name}.${method}: injected fault`, { adapter: this.#name, method, injected: true })
  }
}

/**
 * Wraps `target` in a {@link FaultInjector}.
 *
 * @public
 */
export function injectFaults<P extends object>(target: P, options: { name: string; clock?: Clock }): FaultInjector<P> {
  return new FaultInjector(target, options)
}
