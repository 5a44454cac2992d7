import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FENCE_LINE, fencesOf, type Fence } from './fences.js'

/**
 * Every TypeScript block (```ts, ```typescript, ```tsx, with or without an info string, indented or not) in
 * README.md and docs/*.md is type-checked as its own module against the sources, with the project's strict
 * options. `drkit`, `drkit/testkit` and `drkit/etcd` resolve to src/; the free names the guides use for the
 * reader's own objects (their storage adapters, certificates…) are declared in doc-prelude.d.ts and
 * doc-modules.d.ts. The compiler runs in a child process: a type-check of the whole source tree takes longer than
 * vitest lets a worker's event loop stay blocked.
 */
const root = join(import.meta.dirname, '..', '..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const run = promisify(execFile)

function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'), { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.md'))
    .map((entry) => join('docs', entry.name))
  return ['README.md', ...docs]
}

/** Languages of fences that are not code to compile (shell sessions, output, data). */
const PROSE_LANGUAGES = new Set(['sh', 'bash', 'shell', 'console', 'text', 'txt', 'json', 'yaml', 'diff'])

const fences = new Map(markdownFiles().map((doc) => [doc, fencesOf(readFileSync(join(root, doc), 'utf8'))]))
const insideBody = (doc: string, line: number): boolean => (fences.get(doc) ?? []).some((fence) => line > fence.line && line < fence.end)
const typescript = [...fences].flatMap(([doc, list]) => list.filter((fence) => fence.kind === 'typescript').map((fence) => ({ doc, fence })))

describe('the fence reader', () => {
  it('finds ts, typescript and tsx blocks with info strings and indentation, and keeps other fences apart', () => {
    const text = [
      '```ts',
      'const a = 1',
      '```',
      '  ```typescript title="b.ts"',
      '  const b = 2',
      '    const c = 3',
      '  ```',
      '~~~tsx',
      'const d = <div />',
      '~~~',
      '````sh',
      '```ts',
      '````',
      '```js',
      'var e',
      '```',
      '```',
      'plain',
      '```',
    ].join('\n')
    expect(fencesOf(text).map((f) => [f.kind, f.language, f.line, f.code])).toEqual([
      ['typescript', 'ts', 1, 'const a = 1'],
      ['typescript', 'typescript', 4, 'const b = 2\n  const c = 3'],
      ['typescript', 'tsx', 8, 'const d = <div />'],
      ['other', 'sh', 11, '```ts'],
      ['javascript', 'js', 14, 'var e'],
      ['other', '', 17, 'plain'],
    ])
  })

  it('reports a fence that is never closed', () => {
    expect(fencesOf('text\n```ts\nconst a = 1\n').map((f) => [f.kind, f.line])).toEqual([['unclosed', 2]])
  })
})

describe('code blocks in README.md and docs/', () => {
  let dir = ''
  let problems: Map<string, string[]>
  let compiled: readonly Located[] = []

  beforeAll(async () => {
    dir = await scratch()
    ;({ problems, compiled } = await typeCheck(dir, [...typescript, CANARY]))
  }, 300_000)

  afterAll(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('every fence in every file is either TypeScript that is checked or a labelled non-code block', () => {
    const unchecked = [...fences].flatMap(([doc, list]) =>
      list
        .filter((fence) => fence.kind !== 'typescript' && !(fence.kind === 'other' && PROSE_LANGUAGES.has(fence.language)))
        .map((fence) => `${doc}:${fence.line} \`\`\`${fence.language} (${fence.kind === 'javascript' ? 'write it in TypeScript so it is type-checked' : fence.kind === 'unclosed' ? 'never closed' : 'label it'})`),
    )
    expect(unchecked).toEqual([])
  })

  it('every fence line of every file belongs to a block the reader found, and every TypeScript block is compiled', () => {
    const perFile = (count: (doc: string) => number) => Object.fromEntries([...fences.keys()].map((doc) => [doc, count(doc)]))
    // Counted independently of the reader: lines that look like a fence, outside the body of a block.
    const fenceLines = (doc: string) => readFileSync(join(root, doc), 'utf8').split('\n').filter((line, index) => FENCE_LINE.test(line) && !insideBody(doc, index + 1)).length
    expect(perFile(fenceLines)).toEqual(perFile((doc) => (fences.get(doc) ?? []).reduce((sum, fence) => sum + (fence.kind === 'unclosed' ? 1 : 2), 0)))
    expect(perFile((doc) => compiled.filter((block) => block.doc === doc).length)).toEqual(perFile((doc) => typescript.filter((block) => block.doc === doc).length))
    expect(typescript.length).toBeGreaterThan(5)
  })

  it('a block with a type error is reported at its document and line (a canary compiled with the others)', () => {
    expect(compiled).toContain(CANARY)
    expect(problems.get(CANARY_LABEL)?.join('\n')).toMatch(/^line 1: TS2322: Type 'string' is not assignable to type 'number'/)
  })

  it('every TypeScript block type-checks against the sources with the strict options', () => {
    const report = [...problems].filter(([label]) => label !== CANARY_LABEL).map(([label, list]) => `${label}\n  ${list.join('\n  ')}`)
    expect(report).toEqual([])
  })
})

/** A block that must fail to compile, checked with the real ones: proves that errors are found and placed. */
const CANARY: Located = { doc: 'canary.md', fence: { kind: 'typescript', language: 'ts', line: 7, end: 9, code: "const port: number = '7401'" } }
const CANARY_LABEL = 'canary.md, block at line 7'

/** A scratch directory under the project's (git-ignored) temp/, so that node_modules and src resolve as usual. */
async function scratch(): Promise<string> {
  await mkdir(join(root, 'temp'), { recursive: true })
  return mkdtemp(join(root, 'temp', 'doc-blocks-'))
}

interface Located {
  readonly doc: string
  readonly fence: Fence
}

const blockFile = ({ doc, fence }: Located): string => `${doc.replace(/[/.]/g, '_')}_${fence.line}.${fence.language === 'tsx' ? 'tsx' : 'ts'}`

/**
 * Writes each block to `dir` as a module with a tsconfig extending the project's and runs `tsc` on them in a child
 * process. Returns the diagnostics by block (`doc, block at line N`, or by file for anything else) and the blocks
 * the compiler listed among its files.
 */
async function typeCheck(dir: string, blocks: readonly Located[]): Promise<{ problems: Map<string, string[]>; compiled: Located[] }> {
  const files = new Map(blocks.map((block) => [join(dir, blockFile(block)), block]))
  for (const [file, block] of files) await writeFile(file, `${block.fence.code}\nexport {}\n`)
  const config = {
    extends: join(root, 'tsconfig.json'),
    compilerOptions: {
      noEmit: true,
      rootDir: root,
      noUnusedLocals: false,
      noUnusedParameters: false,
      jsx: 'preserve',
      baseUrl: root,
      paths: { drkit: ['src/index.ts'], 'drkit/testkit': ['src/testkit/index.ts'], 'drkit/etcd': ['src/adapters/etcd/index.ts'] },
    },
    files: [join(import.meta.dirname, 'doc-prelude.d.ts'), join(import.meta.dirname, 'doc-modules.d.ts'), ...files.keys()],
    include: [],
  }
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config, null, 2))
  const args = [tsc, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false', '--listFiles']
  const output = await run(process.execPath, args, { cwd: root, maxBuffer: 64 * 2 ** 20 }).then(
    ({ stdout }) => stdout,
    (error: { stdout?: string; message: string }) => error.stdout || error.message,
  )
  const problems = new Map<string, string[]>()
  const compiled: Located[] = []
  let last: string[] | undefined
  for (const line of output.split('\n')) {
    const listed = files.get(line.trim())
    if (listed !== undefined) {
      compiled.push(listed)
      continue
    }
    const diagnostic = /^(.+?)\((\d+),\d+\): error (TS\d+: .*)$/.exec(line)
    if (diagnostic !== null) {
      const [, file = '', where = '', message = ''] = diagnostic
      const absolute = file.startsWith('/') ? file : join(root, file)
      const block = files.get(absolute)
      last = setDefault(problems, block === undefined ? relative(root, absolute) : `${block.doc}, block at line ${block.fence.line}`)
      last.push(`line ${where}: ${message}`)
    } else if (line.startsWith(' ') && last !== undefined) last.push(line.trim())
    else if (line.trim() !== '' && !line.startsWith('/')) setDefault(problems, '(tsc)').push(line.trim())
  }
  return { problems, compiled }
}

function setDefault(map: Map<string, string[]>, key: string): string[] {
  const list = map.get(key) ?? []
  map.set(key, list)
  return list
}
