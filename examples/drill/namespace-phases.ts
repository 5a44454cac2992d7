import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'

const LINK = { namespace: 'corp', path: '/eng' }

/** Where a client resolving `\\corp\eng\plan.doc` is sent, as `site/share`. */
export async function referral(world: DrillWorld): Promise<string> {
  const { target } = await world.namespaceServer.resolve(LINK.namespace, `${LINK.path}/plan.doc`)
  return `${target.site}/${target.share}`
}

/**
 * A share on the replicated volume, a link point to it in the logical namespace, and a data-protection policy:
 * automatic failover after two failed probes, breaking the mirror with the `default` mode (apply what west
 * received, then promote) — the one mode that works when east is gone.
 */
export async function protectLinkPhase(world: DrillWorld, report: DrillReport, mirrorId: string, volume: string): Promise<void> {
  const { dr } = world
  await dr.site('east').storage.createShare({ name: 'eng', volume, path: '/eng', protocol: 'smb', access: ['read', 'write'] }, dr.token())
  await dr.namespace.createNamespace({ namespace: LINK.namespace })
  await dr.namespace.createLink({ ...LINK, targets: [{ site: 'east', share: 'eng' }] })
  await dr.namespace.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 2, mirrorFailoverMode: 'default' })
  await dr.namespace.protect({ ...LINK, policy: 'gold', mirrorId, destinationShare: 'eng_dr' })
  report.verify('namespace', `\\\\corp\\eng resolves to east/eng on the namespace server`, (await referral(world)) === 'east/eng')
}

/** Probes find the primary share inaccessible; the policy fails the link — and the mirror behind it — over to west. */
export async function linkFailoverPhase(world: DrillWorld, report: DrillReport): Promise<void> {
  const { dr } = world
  const failedOver: boolean[] = []
  const stop = dr.events.on('namespace.linkFailedOver', (event) => failedOver.push(event.payload.mirrorFailedOver))
  await dr.namespace.probeNow()
  await dr.namespace.probeNow()
  await dr.namespace.idle()
  stop()
  report.verify('failover', 'two failed probes of east/eng failed the link over, breaking the mirror', failedOver.length === 1 && failedOver[0] === true)
  report.verify('failover', `\\\\corp\\eng now resolves to west/eng_dr — the same logical path`, (await referral(world)) === 'west/eng_dr')
}

/** After the mirror is back in its original direction, the link returns to the original share. */
export async function linkFailbackPhase(world: DrillWorld, report: DrillReport): Promise<void> {
  await world.dr.namespace.failback(LINK)
  report.verify('failback', `\\\\corp\\eng resolves to east/eng again`, (await referral(world)) === 'east/eng')
}
