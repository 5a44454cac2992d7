import { nextEvent } from './checks.js'
import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'

const LINK = { namespace: 'corp', path: '/eng' }
/** How often the primary share is probed, and how many failed probes in a row declare it inaccessible. */
const PROBE = { intervalMs: 250, failures: 2 } as const

/** Where a client resolving `\\corp\eng\plan.doc` is sent, as `site/share`. */
export async function referral(world: DrillWorld): Promise<string> {
  const { target } = await world.namespaceServer.resolve(LINK.namespace, `${LINK.path}/plan.doc`)
  return `${target.site}/${target.share}`
}

/**
 * A share on the replicated volume, a link point to it in the logical namespace, and a data-protection policy:
 * automatic failover after two failed probes 250 ms apart, breaking the mirror with the `default` mode (apply
 * what west received, then promote) — the one mode that works when east is gone. The system's monitor probes the
 * share from then on, on the policy's interval.
 */
export async function protectLinkPhase(world: DrillWorld, report: DrillReport, mirrorId: string, volume: string): Promise<void> {
  const { dr } = world
  await dr.site('east').storage.createShare({ name: 'eng', volume, path: '/eng', protocol: 'smb', access: ['read', 'write'] }, dr.token())
  await dr.namespace.createNamespace({ namespace: LINK.namespace })
  await dr.namespace.createLink({ ...LINK, targets: [{ site: 'east', share: 'eng' }] })
  await dr.namespace.createPolicy({
    name: 'gold',
    automaticFailover: true,
    breakMirror: true,
    failuresBeforeInaccessible: PROBE.failures,
    probeInterval: PROBE.intervalMs,
    probeTimeout: '1s',
    mirrorFailoverMode: 'default',
  })
  await dr.namespace.protect({ ...LINK, policy: 'gold', mirrorId, destinationShare: 'eng_dr' })
  report.state('namespace', `\\\\corp\\eng resolves to east/eng on the namespace server`, (await referral(world)) === 'east/eng')
}

/**
 * East has just been lost: waits for the monitor to declare east's share inaccessible after two failed probes
 * and for the policy to fail the link — and the mirror behind it — over to west. Resolves with the
 * `performance.now()` time of the declaration.
 */
export async function linkFailoverPhase(world: DrillWorld, report: DrillReport): Promise<number> {
  const { dr } = world
  let declaredAt = Number.NaN
  const stopDeclared = dr.events.on('namespace.shareInaccessible', () => (declaredAt = performance.now()))
  try {
    const mirrorFailedOver = await nextEvent('the link to fail over', (deliver: (broke: boolean) => void) =>
      dr.events.on('namespace.linkFailedOver', (event) => deliver(event.payload.mirrorFailedOver)),
    )
    await dr.namespace.idle()
    report.state('failover', `${PROBE.failures} failed probes of east/eng failed the link over, breaking the mirror`, mirrorFailedOver && Number.isFinite(declaredAt))
    report.state('failover', `\\\\corp\\eng now resolves to west/eng_dr — the same logical path`, (await referral(world)) === 'west/eng_dr')
    return declaredAt
  } finally {
    stopDeclared()
  }
}

/** After the mirror is back in its original direction, the link returns to the original share. */
export async function linkFailbackPhase(world: DrillWorld, report: DrillReport): Promise<void> {
  await world.dr.namespace.failback(LINK)
  report.state('failback', `\\\\corp\\eng resolves to east/eng again`, (await referral(world)) === 'east/eng')
}
