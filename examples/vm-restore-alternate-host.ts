/**
 * Restoring one VM at the DR site on a host of your choice. A VM — a child process whose program appends order
 * records to a file on its disk — runs on hypervisor hv-east-1. The process hosts are given the sites' storage
 * (`processHost({ disks: { storage } })`), so the VM's disk directory is its disk volume: materialised when it
 * starts, flushed back when it is quiesced (a JSON-line request the program acknowledges once it holds its
 * writes). A DR plan protects the VM and places it at west by free capacity; a second plan shows a VM no west host
 * can take — reported before any disaster. An application-consistent backup is replicated to west while the VM
 * keeps writing, and then only that VM — no site failover — is restored from the replicated backup on hv-west-1.
 * It runs there from exactly the records it had written when it was backed up, its disk equals the backup byte
 * for byte, and the backup metadata still names the host it was taken on.
 *
 * Run: npx tsx examples/vm-restore-alternate-host.ts
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDrSystem, fileStateStore, localStorage, processHost, tcpNetwork } from '../src/index.js'

const VM = 'erp-app'
const DISK = 'erp-app-disk0'
const DISK_BYTES = 4 * 2 ** 20
const root = await mkdtemp(join(tmpdir(), 'drkit-vm-'))
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16)

/**
 * The VM's program: every 10 ms it appends the next order number and the host it runs on to `<disk>/orders.log`
 * (carrying on from the last order the file holds); on `quiesce` it stops, fsyncs and answers `quiesced`; on
 * `unquiesce` it goes on.
 */
const ERP_APP = `'use strict'
const fs = require('node:fs'), path = require('node:path')
const file = path.join(process.argv[process.argv.length - 1], 'orders.log')
const done = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\\n').filter(Boolean) : []
let order = Number((done[done.length - 1] ?? '0').split(' ')[0]), held = false, pending = ''
const fd = fs.openSync(file, 'a')
setInterval(() => { if (!held) fs.writeSync(fd, ++order + ' ' + process.env.DRKIT_VM_HOST + '\\n') }, 10)
const reply = (m) => process.stdout.write(JSON.stringify(m) + '\\n')
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => {
  pending += chunk
  for (let end = pending.indexOf('\\n'); end >= 0; end = pending.indexOf('\\n')) {
    const request = JSON.parse(pending.slice(0, end))
    pending = pending.slice(end + 1)
    if (request.drkit === 'quiesce') { held = true; fs.fsyncSync(fd); reply({ drkit: 'quiesced', id: request.id, applicationConsistent: true, writers: ['orders'] }) }
    else { held = false; reply({ drkit: 'unquiesced', id: request.id }) }
  }
})
process.stdin.on('end', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
`

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 25) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) throw new Error(`verification failed: ${what}`)
}

const orders = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '')

try {
  const eastNet = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
  const westNet = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
  eastNet.setPeer('west', await westNet.address())
  westNet.setPeer('east', await eastNet.address())
  // Each site's storage, and its hypervisors: a VM is a child process whose disks are the site's volumes.
  const eastStorage = localStorage({ dir: join(root, 'east') })
  const westStorage = localStorage({ dir: join(root, 'west') })
  const guest = { command: process.execPath, args: ['-e', ERP_APP, '--'] }
  const eastHosts = processHost({ workDir: join(root, 'east-hosts'), rootDir: join(root, 'east-root'), guest, disks: { storage: eastStorage }, hosts: [{ name: 'hv-east-1', cpus: 32, memoryMb: 131072 }] })
  const westHosts = processHost({
    workDir: join(root, 'west-hosts'),
    rootDir: join(root, 'west-root'),
    guest,
    disks: { storage: westStorage },
    hosts: [
      { name: 'hv-west-1', cpus: 8, memoryMb: 16384 },
      { name: 'hv-west-2', cpus: 16, memoryMb: 32768 },
    ],
  })
  await using dr = await createDrSystem({
    state: fileStateStore({ dir: join(root, 'state') }),
    sites: {
      east: { storage: eastStorage, network: eastNet, host: eastHosts },
      west: { storage: westStorage, network: westNet, host: westHosts },
    },
  })
  const east = dr.site('east')
  dr.events.on('vm.planUnplaceable', (e) => console.log(`vm.planUnplaceable  plan ${e.payload.planId}: ${e.payload.vms.map((vm) => `${vm.vmId} (${vm.reason})`).join(', ')}`))

  // The VM at east, writing orders to its disk.
  await east.storage.createVolume({ name: DISK, sizeBytes: DISK_BYTES, blockSize: 4096 }, dr.token())
  const vm = { name: 'ERP application server', cpus: 4, memoryMb: 8192, networks: ['prod'], config: { role: 'app' } }
  await east.host().registerVm('hv-east-1', { ...vm, id: VM, disks: [{ volume: DISK, mountPath: '/data' }], tags: ['erp'] }, dr.token())
  await east.host().powerOn(VM, dr.token())
  const eastLog = join(root, 'east-root', 'data', 'orders.log')
  await until('the VM to write orders', async () => (await orders(eastLog)).length >= 10)

  // Plans are checked when saved, and again whenever you ask: an unplaceable VM is known before any disaster.
  await east.host().registerVm('hv-east-1', { ...vm, id: 'warehouse', memoryMb: 65536, disks: [], tags: ['analytics'] }, dr.token())
  const analytics = { id: 'analytics', source: 'east', destination: 'west', protect: { tags: ['analytics'] }, backupEvery: '1h', replicateEvery: '1h' }
  const saved = await dr.vms.savePlan({ ...analytics, placement: { rule: 'capacity', hosts: ['hv-west-1', 'hv-west-2'] } })
  check(`savePlan reports warehouse (64 GiB) as unplaceable at west: ${saved.unplaced[0]?.reason ?? 'no reason'}`, saved.unplaced.some((u) => u.vmId === 'warehouse'))
  const validated = await dr.vms.validatePlan('analytics')
  check('validatePlan says the same, without any failover', validated.unplaced.length === 1 && validated.placed.length === 0)

  const plan = await dr.vms.savePlan({ id: 'erp', source: 'east', destination: 'west', protect: { tags: ['erp'] }, backupEvery: '1h', replicateEvery: '1h', placement: { rule: 'capacity', hosts: ['hv-west-1', 'hv-west-2'] } })
  check(`the erp plan places ${VM} on ${plan.placed[0]?.host ?? 'nothing'} (most free capacity)`, plan.placed.length === 1 && plan.unplaced.length === 0)

  // An application-consistent backup (the VM holds its writes; its disk is flushed into the volume), replicated.
  const backup = await dr.vms.backupNow({ plan: 'erp', vm: VM })
  check(`backup ${backup.backupId} is ${backup.consistency}`, backup.consistency === 'application-consistent')
  const cuts = await dr.vms.replicateNow('erp')
  const [mirror] = await dr.mirrors.list()
  if (mirror === undefined) throw new Error('no mirror carries the VM backups')
  await until('the backup to reach west', async () => ((await dr.mirrors.status(mirror.id)).lastPlayedBack ?? 0) >= (cuts[VM] ?? Infinity))

  // Restore just this VM from the backup west holds, on a host we choose (not the plan's choice); east goes on.
  const restored = await dr.vms.restore({ vm: VM, site: 'west', mode: 'alternate-host', host: 'hv-west-1', backup: backup.backupId })
  check(`${VM} was restored from ${restored.backupId ?? 'nothing'} on ${restored.host ?? 'no host'}`, restored.outcome === 'restored' && restored.host === 'hv-west-1')
  const info = await dr.site('west').host().getVm(VM)
  check(`${VM} is ${info?.power ?? 'missing'} on ${info?.host ?? 'no host'} at west`, info?.power === 'running' && info.host === 'hv-west-1')
  const restoredDisk = await dr.site('west').storage.read(info?.disks[0]?.volume ?? DISK, 0, DISK_BYTES)
  const backedUp = await east.storage.read(DISK, 0, DISK_BYTES, { snapshot: `drvm-${backup.backupId}` })
  check(`its disk equals the backup byte for byte (sha ${sha(restoredDisk)} = ${sha(backedUp)})`, sha(restoredDisk) === sha(backedUp))
  const westLog = join(root, 'west-root', 'data', 'orders.log')
  await until('the restored VM to write orders at west', async () => (await orders(westLog)).some((line) => line.endsWith(' hv-west-1')))
  const atWest = await orders(westLog)
  const atEast = await orders(eastLog)
  const kept = atWest.findIndex((line) => !line.endsWith(' hv-east-1'))
  const same = atWest.slice(0, kept).every((line, index) => line === atEast[index] && line === `${index + 1} hv-east-1`)
  check(`it holds orders 1 to ${kept} written on east, as backed up, and carries on with order ${kept + 1} on hv-west-1`, kept > 0 && same && atWest[kept] === `${kept + 1} hv-west-1`)
  check(`the orders east wrote after the backup are not in it (east has gone on to ${atEast.length})`, atEast.length > kept)
  const metadata = (await dr.vms.listBackups({ vm: VM, site: 'west' })).find((b) => b.metadata.backupId === backup.backupId)?.metadata
  check(`the backup metadata still names the original host (${metadata?.hostName ?? 'none'})`, metadata?.hostName === 'hv-east-1')
  const original = await east.host().getVm(VM)
  check(`the original VM still runs on hv-east-1 (this was a restore, not a failover)`, original?.power === 'running')
  console.log('VM restore on an alternate host: every verification passed')
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await rm(root, { recursive: true, force: true })
}
