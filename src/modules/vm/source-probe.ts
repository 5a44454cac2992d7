import { DrError } from '../../kernel/errors.js'
import { withDeadline } from './deadline.js'
import { siteOf, type VmContext } from './context.js'

/**
 * How long the storage and the hosts of a site have to answer a probe, in ms of the kernel clock: a site that
 * does not answer in time counts as not answering.
 *
 * @public
 */
export const SITE_PROBE_TIMEOUT_MS = 5_000

/**
 * True when both the storage and the hosts of `site` answer this coordinator (each within
 * {@link SITE_PROBE_TIMEOUT_MS}; a hanging adapter is a site that does not answer).
 *
 * @public
 */
export async function siteAnswers(ctx: VmContext, site: string): Promise<boolean> {
  const { storage, host } = siteOf(ctx, site)
  const late = (): DrError => new DrError('E_TIMEOUT', `site ${site} did not answer within ${SITE_PROBE_TIMEOUT_MS} ms`, { site })
  const answers = (probe: () => Promise<unknown>): Promise<boolean> =>
    withDeadline(Promise.resolve().then(probe), SITE_PROBE_TIMEOUT_MS, ctx.clock, late).then(
      () => true,
      () => false,
    )
  const [volumes, hosts] = await Promise.all([answers(() => storage.listVolumes()), answers(() => host.listHosts())])
  return volumes && hosts
}
