/**
 * The DR drill — `npm run demo`. Two sites, east and west, on the embedded defaults (local storage under a
 * temporary directory or `--dir <path>`, the file journal, TCP on loopback between the sites, VMs as child
 * processes); no service to install. It takes a consistency-group snapshot of an expandable volume and replicates
 * it to west, replicates a volume to west, protects a namespace link point on it, backs up and replicates a VM,
 * then loses east (its storage and hypervisors stop answering and it drops off the network) with writes it never
 * sent: the monitor detects it, the link fails over, the VM restarts on an alternate host at west, the expandable
 * volume is presented read-write at west, and a damaged volume at west is restored under frozen I/O. East
 * returns, is resynchronised without a full copy and fails back. Data is compared byte for byte at every step
 * that moves or restores it; the rest (referrals, placement, mounts) is checked by state. It ends with a report
 * (RPO and RTO achieved and how they were measured, bytes on the wire, fence and freeze windows); `--json` prints
 * the report as JSON. The exit code is 1 if any verification failed, 2 if `--dir` names a non-empty directory.
 *
 * Run: npm run demo   (or: npx tsx examples/dr-drill.ts [--json] [--dir <path>])
 *
 * `DRKIT_DRILL_TAMPER=replication` writes one block at east behind the mirror's back before the replication is
 * checked; the drill must then report the failed check and exit 1 (test/examples/dr-drill.test.ts).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { DrillReport } from './drill/report.js'
import { openDrillWorld, type DrillWorld } from './drill/sites.js'
import { linkFailbackPhase, linkFailoverPhase, protectLinkPhase } from './drill/namespace-phases.js'
import { vmBackupPhase, vmFailoverPhase } from './drill/vm-phases.js'
import { frozenRestorePhase } from './drill/freeze-phases.js'
import { consistencyGroupPhase, evFailbackPhase, evFailoverPhase, evReplicationPhase, evWriteAtWest } from './drill/ev-phases.js'
import { MIRROR, VOLUME, failbackPhase, recoveryPointAge, replicationPhase, unsentWrites, verifyFailover, writesAtWest } from './drill/storage-phases.js'

const json = process.argv.includes('--json')
const dirFlag = process.argv.indexOf('--dir')
const keep = dirFlag >= 0
const tamper = process.env['DRKIT_DRILL_TAMPER'] === 'replication'

/** Every phase of the drill, in order; a phase that throws is recorded as a failed check and ends the drill. */
async function drill(world: DrillWorld, report: DrillReport): Promise<void> {
  try {
    const orders = await report.phase('consistency-group snapshot of an expandable volume on east', () => consistencyGroupPhase(world, report))
    await report.phase('the expandable volume replicated east → west', () => evReplicationPhase(world, report, orders))
    const replicated = await report.phase('replication east → west over TCP', () => replicationPhase(world, report, tamper))
    await report.phase('namespace link point protected by the mirror', () => protectLinkPhase(world, report, MIRROR, VOLUME.name))
    const vmBackup = await report.phase('VM backup and replication', () => vmBackupPhase(world, report))
    await report.phase('disaster: east is lost', async () => {
      await unsentWrites(world)
      report.metrics.rpoSeconds = await recoveryPointAge(world, Date.now())
      world.loseEast()
      const lostAt = performance.now()
      const declaredAt = await linkFailoverPhase(world, report)
      await vmFailoverPhase(world, report, vmBackup)
      await evFailoverPhase(world, report, orders)
      report.metrics.rtoSeconds = (performance.now() - lostAt) / 1000
      report.metrics.detectionSeconds = (declaredAt - lostAt) / 1000
      await verifyFailover(world, report, replicated)
    })
    const writtenAtWest = await report.phase('west serves while east is away; a disrupted volume restored under frozen I/O', async () => {
      await writesAtWest(world)
      const object = await evWriteAtWest(world)
      await frozenRestorePhase(world, report)
      return object
    })
    await report.phase('east returns: resync and failback', async () => {
      world.restoreEast()
      await failbackPhase(world, report)
      await evFailbackPhase(world, report, orders, writtenAtWest)
      await linkFailbackPhase(world, report)
    })
  } catch (error) {
    report.state('drill', `the drill ran to the end (${error instanceof Error ? error.message : String(error)})`, false)
  }
}

async function main(): Promise<number> {
  const root = keep ? resolve(process.argv[dirFlag + 1] ?? './drkit-drill') : await mkdtemp(join(tmpdir(), 'drkit-drill-'))
  if (keep && (await readdir(root).catch(() => [])).length > 0) {
    console.error(`dr drill: --dir ${root} is not empty. The drill builds its two sites in that directory: give it a new or empty one (or no --dir, for a temporary one).`)
    return 2
  }
  const log = json ? () => undefined : (line: string) => console.log(line)
  const report = new DrillReport(log)
  log(`drkit DR drill — sites east and west under ${root}`)
  const world = await openDrillWorld(root, !json)
  try {
    await drill(world, report)
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
  return report.passed ? 0 : 1
}

process.exitCode = await main()
