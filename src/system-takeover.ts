import { DrError, toDrError } from './kernel/errors.js'
import type { Clock } from './kernel/clock.js'
import type { FenceToken } from './kernel/fencing.js'
import type { DrSystemConfig } from './system-config.js'

/**
 * What presenting a coordinator's token to one port of one site gave: `presented`, or `unreached` with the error
 * (the site may be the one that was lost).
 *
 * @public
 */
export interface TokenPresentation {
  readonly site: string
  readonly port: 'storage' | 'network' | 'host'
  readonly outcome: 'presented' | 'unreached'
  readonly code?: string
  readonly message?: string
}

/**
 * What a coordinator did with its fence token when it started: the token, and one entry per port of every site.
 *
 * @public
 */
export interface TakeoverReport {
  readonly token: FenceToken
  readonly ports: readonly TokenPresentation[]
}

/** How long one adapter may take to accept a presented token before it is reported as unreached. */
const PRESENT_TIMEOUT_MS = 10_000

/**
 * Presents a new coordinator's fence token to every port of every site, in parallel, before it acts: from then on
 * each adapter refuses the previous coordinator's token, on every resource, even those the new coordinator has not
 * touched yet. A port that cannot be reached (the disaster this coordinator may be recovering from) is reported as
 * `unreached` and does not stop the start: such an adapter learns the token from the first call made to it.
 */
export async function presentTokenToSites(sites: DrSystemConfig['sites'], token: FenceToken, clock: Clock): Promise<TakeoverReport> {
  const attempts: Array<readonly [string, TokenPresentation['port'], { presentToken(token: FenceToken): Promise<void> }]> = []
  for (const [site, ports] of Object.entries(sites).sort(([a], [b]) => (a < b ? -1 : 1))) {
    attempts.push([site, 'storage', ports.storage])
    if (ports.network !== undefined) attempts.push([site, 'network', ports.network])
    if (ports.host !== undefined) attempts.push([site, 'host', ports.host])
  }
  const outcomes = await Promise.all(
    attempts.map(async ([site, port, adapter]): Promise<TokenPresentation> => {
      const error = await presentWithin(() => adapter.presentToken(token), clock)
      return error === undefined ? { site, port, outcome: 'presented' } : { site, port, outcome: 'unreached', code: error.code, message: error.message }
    }),
  )
  return { token, ports: outcomes }
}

/** Runs `present` within {@link PRESENT_TIMEOUT_MS}: undefined when the adapter accepted, its error otherwise. */
async function presentWithin(present: () => Promise<void>, clock: Clock): Promise<DrError | undefined> {
  let cancel = (): void => undefined
  const timeout = new Promise<DrError>((resolve) => {
    cancel = clock.setTimer(PRESENT_TIMEOUT_MS, () => resolve(new DrError('E_TIMEOUT', `no answer within ${PRESENT_TIMEOUT_MS} ms`)))
  })
  try {
    const accepted = Promise.resolve()
      .then(present)
      .then(
        () => undefined,
        (error: unknown) => toDrError(error, 'E_ADAPTER'),
      )
    return await Promise.race([accepted, timeout])
  } finally {
    cancel()
  }
}
