/**
 * The DR drill — `npm run demo`. Two sites, east and west, on the embedded defaults (local storage under a
 * temporary directory or `--dir <path>`, the file journal, TCP on loopback between the sites, VMs as child
 * processes); no service to install. It takes a consistency-group snapshot of an expandable volume, replicates
 * a volume to west, protects a namespace link point on it, backs up and replicates a VM, then loses east (its
 * storage and hypervisors stop answering and it drops off the network) with writes it never sent: the link
 * fails over, the VM restarts on an alternate host at west, and a damaged volume at west is restored under
 * frozen I/O. East returns, is resynchronised without a full copy and fails back — the data verified byte for
 * byte at every step. It ends with a report (RPO and RTO achieved, bytes on the wire, fence and freeze windows);
 * `--json` prints the report as JSON. The exit code is non-zero if any verification failed.
 *
 * Run: npm run demo   (or: npx tsx examples/dr-drill.ts [--json] [--dir <path>])
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { DrillReport } from './drill/report.js'
import { openDrillWorld } from './drill/sites.js'
import { linkFailbackPhase, linkFailoverPhase, protectLinkPhase } from './drill/namespace-phases.js'
import { vmBackupPhase, vmFailoverPhase } from './drill/vm-phases.js'
import { frozenRestorePhase } from './drill/freeze-phases.js'
import { MIRROR, VOLUME, consistencyGroupPhase, failbackPhase, recoveryPointAge, replicationPhase, unsentWrites, verifyFailover } from './drill/storage-phases.js'

const json = process.argv.includes('--json')
const dirFlag = process.argv.indexOf('--dir')
const keep = dirFlag >= 0
const root = keep ? resolve(process.argv[dirFlag + 1] ?? './drkit-drill') : await mkdtemp(join(tmpdir(), 'drkit-drill-'))
const log = json ? () => undefined : (line: string) => console.log(line)
const report = new DrillReport(log)

log(`drkit DR drill — sites east and west under ${root}`)
const world = await openDrillWorld(root)
try {
  await report.phase('consistency-group snapshot of an expandable volume on east', () => consistencyGroupPhase(world, report))
  await report.phase('replication east → west over TCP', () => replicationPhase(world, report, !json))
  await report.phase('namespace link point protected by the mirror', () => protectLinkPhase(world, report, MIRROR, VOLUME.name))
  const vmBackup = await report.phase('VM backup and replication', () => vmBackupPhase(world, report))
  await report.phase('disaster: east is lost', async () => {
    await unsentWrites(world)
    const disasterAt = Date.now()
    report.metrics.rpoSeconds = await recoveryPointAge(world, disasterAt)
    world.loseEast()
    const started = performance.now()
    await linkFailoverPhase(world, report)
    await vmFailoverPhase(world, report, vmBackup)
    report.metrics.rtoSeconds = (performance.now() - started) / 1000
    await verifyFailover(world, report)
  })
  await report.phase('a disrupted volume at west restored under frozen I/O', () => frozenRestorePhase(world, report))
  await report.phase('east returns: resync and failback', async () => {
    await failbackPhase(world, report)
    await linkFailbackPhase(world, report)
  })
} catch (error) {
  report.verify('drill', `the drill ran to the end (${error instanceof Error ? error.message : String(error)})`, false)
} finally {
  report.metrics.bytesSent = world.wireBytes()
  await world.close()
  if (!keep) await rm(root, { recursive: true, force: true })
}

if (json) console.log(JSON.stringify(report.toJSON(), null, 2))
else {
  console.log(report.summary())
  if (report.passed) console.log('dr drill: every verification passed')
}
process.exitCode = report.passed ? 0 : 1
