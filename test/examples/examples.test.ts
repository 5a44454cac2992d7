import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const examplesDir = join(import.meta.dirname, '..', '..', 'examples')
const examples = readdirSync(examplesDir).filter((file) => file.endsWith('.ts'))

describe('examples', () => {
  it('there is at least one example', () => {
    expect(examples.length).toBeGreaterThan(0)
  })

  for (const example of examples) {
    it(`${example} runs to completion and reports that every verification passed`, async () => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', join(examplesDir, example)], { timeout: 120_000 })
      expect(stdout).toMatch(/every verification passed/)
    }, 150_000)
  }
})
