import { DrError, callAdapter } from '../../kernel/errors.js'
import type { HostPolicies } from '../../ports/host.js'
import { siteOf, type VmContext } from './context.js'

/**
 * The protection policies the data protection agent of host `host` on `site` reports through the site's
 * `HostPort.hostPolicies` (note 003 ¶0027: DR services may build a plan from them). `E_PRECONDITION` when the
 * site's host adapter has no agent API or the agent reports none; `E_NOT_FOUND` for an unknown host.
 *
 * @public
 */
export async function hostPoliciesOf(ctx: VmContext, site: string, host: string): Promise<HostPolicies> {
  const port = siteOf(ctx, site).host
  const read = port.hostPolicies?.bind(port)
  if (read === undefined) throw new DrError('E_PRECONDITION', `the hosts of site ${site} (${port.kind}) report no protection policies`, { site, host })
  const policies = await callAdapter(port.kind, 'hostPolicies', () => read(host))
  if (policies === undefined) throw new DrError('E_PRECONDITION', `the agent of host "${host}" on site ${site} reports no protection policies`, { site, host })
  return policies
}
